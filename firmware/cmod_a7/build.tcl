# Vivado non-project build of the CMOD A7-35T top (cmod_a7_top.v).
# Run in a folder written by `snnkit build --board cmod_a7 NET -o DIR`:
#     vivado -mode batch -source build.tcl
# build_params.tcl (written by snnkit build) sets snn_generics (the top's parameters) and
# snn_sources (the Verilog files; the header they include, snn_map.vh, is in src/ too).
# Outputs: cmod_a7.bit, utilisation.rpt, timing.rpt.
# Untested here: this project's machines have no Vivado.

set part xc7a35tcpg236-1
source build_params.tcl

foreach f $snn_sources {
    read_verilog $f
}
read_xdc src/cmod_a7.xdc

set generic_args {}
foreach g $snn_generics {
    lappend generic_args -generic $g
}
synth_design -top cmod_a7_top -part $part -include_dirs src {*}$generic_args
opt_design
place_design
phys_opt_design
route_design

report_utilization -file utilisation.rpt
report_timing_summary -file timing.rpt
write_bitstream -force cmod_a7.bit
