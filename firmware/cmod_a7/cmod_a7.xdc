## Digilent CMOD A7-35T (xc7a35tcpg236-1) pins used by cmod_a7_top.v.
## Pin numbers from Digilent's Cmod-A7-Master.xdc (rev. B).

## 12 MHz clock
set_property -dict { PACKAGE_PIN L17 IOSTANDARD LVCMOS33 } [get_ports { clk_12m }];
create_clock -add -name sys_clk_pin -period 83.33 -waveform {0 41.66} [get_ports { clk_12m }];

## buttons: btn[0] resets the core (active high on this board)
set_property -dict { PACKAGE_PIN A18 IOSTANDARD LVCMOS33 } [get_ports { btn0 }];

## LEDs (active high): led[0] busy, led[1] output waiting or UART frame in progress
set_property -dict { PACKAGE_PIN A17 IOSTANDARD LVCMOS33 } [get_ports { led0 }];
set_property -dict { PACKAGE_PIN C16 IOSTANDARD LVCMOS33 } [get_ports { led1 }];

## USB-UART (FTDI): J18 = uart_rxd_out (FPGA transmits), J17 = uart_txd_in (FPGA receives)
set_property -dict { PACKAGE_PIN J18 IOSTANDARD LVCMOS33 } [get_ports { uart_tx }];
set_property -dict { PACKAGE_PIN J17 IOSTANDARD LVCMOS33 } [get_ports { uart_rx }];

## asynchronous pins: no timing paths to analyse
set_false_path -from [get_ports { btn0 uart_rx }]
set_false_path -to [get_ports { uart_tx led0 led1 }]

## configuration
set_property CFGBVS VCCO [current_design]
set_property CONFIG_VOLTAGE 3.3 [current_design]
set_property BITSTREAM.CONFIG.SPI_BUSWIDTH 4 [current_design]
