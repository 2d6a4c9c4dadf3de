// The emulated board: Verilated host_top served on a TCP port or a pseudo-terminal.
//
// Bytes from the client are shifted into the uart_rx pin bit by bit (8N1, CLKS_PER_BIT
// clocks per bit); the uart_tx pin is sampled mid-bit and the bytes go back to the client.
// The clock only runs while something happens (bytes to shift in or out, the decoder inside
// a frame or a command), so an idle board costs no CPU; the cycle count therefore measures
// link time. A client that disconnects leaves the board as it is for the next one.
// SIGINT/SIGTERM stop it cleanly.
//
// Usage: Vhost_top --port N [--host ADDR] | --pty [--link PATH]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "Vhost_top.h"
#include "verilated.h"

#ifndef CLKS_PER_BIT
#define CLKS_PER_BIT 4
#endif

static volatile sig_atomic_t g_stop = 0;
static void on_signal(int) { g_stop = 1; }

// Shifts bytes into the board's rx pin.
struct Serializer {
    std::deque<uint8_t> queue;
    int bit = -1;  // -1 idle, 0 start, 1..8 data, 9 stop
    int cnt = 0;
    uint8_t cur = 0;
    int pin() const {
        if (bit < 0) return 1;
        if (bit == 0) return 0;
        if (bit <= 8) return (cur >> (bit - 1)) & 1;
        return 1;
    }
    bool busy() const { return bit >= 0 || !queue.empty(); }
    void tick() {  // after one clock
        if (bit < 0) {
            if (queue.empty()) return;
            cur = queue.front();
            queue.pop_front();
            bit = 0;
            cnt = 0;
            return;
        }
        if (++cnt == CLKS_PER_BIT) {
            cnt = 0;
            if (++bit == 10) bit = -1;
        }
    }
};

// Samples the board's tx pin in the middle of each bit.
struct Deserializer {
    int bit = -1;
    int cnt = 0;
    uint8_t cur = 0;
    bool busy() const { return bit >= 0; }
    bool tick(int pin, uint8_t* out) {  // true when a byte completed
        if (bit < 0) {
            if (pin == 0) { bit = 0; cnt = 0; }
            return false;
        }
        ++cnt;
        if (cnt == CLKS_PER_BIT / 2 + bit * CLKS_PER_BIT) {
            if (bit >= 1 && bit <= 8) cur = (cur >> 1) | (pin ? 0x80 : 0);
            if (bit == 9) {
                bit = -1;
                if (pin) { *out = cur; return true; }
                return false;  // framing error: dropped, as on a wire
            }
            ++bit;
        }
        return false;
    }
};

struct Board {
    VerilatedContext ctx;
    Vhost_top* top;
    Serializer ser;
    Deserializer des;
    unsigned long long cycles = 0;
    Board() {
        top = new Vhost_top{&ctx};
        top->uart_rx = 1;
        top->rst = 1;
        for (int i = 0; i < 8; ++i) clock();
        top->rst = 0;
        cycles = 0;
    }
    ~Board() { top->final(); delete top; }
    void clock() {
        top->clk = 0;
        top->eval();
        top->clk = 1;
        top->eval();
        ++cycles;
    }
    // Something is going on: bytes shifting in or out, the decoder inside a frame or a
    // command. The UART transmitter takes a byte a few cycles before its start bit, while
    // the decoder may already be idle: the clock keeps running for a byte's time after the
    // last sign of activity (tail), or that byte would wait for the next client byte.
    int tail = 0;
    bool busy() const { return ser.busy() || des.busy() || top->link_active || !top->uart_tx; }
    bool active() const { return tail > 0 || busy(); }
    // run up to n cycles while active; bytes from the tx pin are appended to out
    void run(int n, std::vector<uint8_t>& out) {
        for (int i = 0; i < n && active(); ++i) {
            top->uart_rx = ser.pin();
            clock();
            ser.tick();
            uint8_t b;
            if (des.tick(top->uart_tx, &b)) out.push_back(b);
            tail = busy() ? 12 * CLKS_PER_BIT : tail - 1;
        }
    }
};

static bool write_all(int fd, const std::vector<uint8_t>& data) {
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = write(fd, data.data() + off, data.size() - off);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {  // a client that stopped reading
            if (g_stop) return false;                           // must not outlast a signal
            usleep(100);
            continue;
        }
        if (n <= 0) return false;
        off += size_t(n);
    }
    return true;
}

// Serve one connection (fd) until it closes, a signal, or a new client knocks on listen_fd
// (the newest client wins: a stale one cannot lock the board). Returns the new client or -1.
static int serve(Board& b, int fd, bool is_pty, int listen_fd) {
    std::vector<uint8_t> out;
    uint8_t buf[4096];
    while (!g_stop) {
        struct pollfd p[2] = {{fd, POLLIN, 0}, {listen_fd, POLLIN, 0}};
        int r = poll(p, listen_fd < 0 ? 1 : 2, b.active() ? 0 : 200);
        if (r < 0 && errno != EINTR) return -1;
        if (r > 0 && listen_fd >= 0 && (p[1].revents & POLLIN)) {
            int c = accept(listen_fd, nullptr, nullptr);
            if (c >= 0) return c;
        }
        if (r > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = read(fd, buf, sizeof buf);
            if (n > 0) {
                b.ser.queue.insert(b.ser.queue.end(), buf, buf + n);
            } else if (!is_pty && (n == 0 || (errno != EAGAIN && errno != EINTR))) {
                return -1;  // client gone
            } else if (is_pty && n < 0 && errno == EIO) {
                usleep(50000);  // no client on the slave side
            }
        }
        b.run(4096, out);
        if (!out.empty()) {
            if (!write_all(fd, out) && !is_pty) return -1;
            out.clear();
        }
    }
    return -1;
}

int main(int argc, char** argv) {
    int port = -1;
    bool use_pty = false;
    std::string host = "127.0.0.1", link;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--port" && i + 1 < argc) port = atoi(argv[++i]);
        else if (a == "--host" && i + 1 < argc) host = argv[++i];
        else if (a == "--pty") use_pty = true;
        else if (a == "--link" && i + 1 < argc) link = argv[++i];
        else { fprintf(stderr, "usage: %s --port N [--host ADDR] | --pty [--link PATH]\n", argv[0]); return 2; }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
    Board board;

    if (use_pty) {
        int m = posix_openpt(O_RDWR | O_NOCTTY);
        if (m < 0 || grantpt(m) || unlockpt(m)) { perror("pty"); return 1; }
        const char* name = ptsname(m);
        int keep = open(name, O_RDWR | O_NOCTTY);  // keeps the pty up between clients
        struct termios t;
        tcgetattr(keep, &t);
        cfmakeraw(&t);
        tcsetattr(keep, TCSANOW, &t);
        if (!link.empty()) { unlink(link.c_str()); if (symlink(name, link.c_str())) perror("symlink"); }
        fcntl(m, F_SETFL, O_NONBLOCK);
        printf("serving %s clks_per_bit %d (pty)\n", link.empty() ? name : link.c_str(), CLKS_PER_BIT);
        fflush(stdout);
        serve(board, m, true, -1);
        if (!link.empty()) unlink(link.c_str());
        close(keep);
        close(m);
        printf("stopped cycles %llu\n", board.cycles);
        return 0;
    }

    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port < 0 ? 0 : port);
    if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) { /* never 0.0.0.0 instead */
        fprintf(stderr, "--host: not an IPv4 address: %s\n", host.c_str());
        return 1;
    }
    if (bind(s, (struct sockaddr*)&addr, sizeof addr) || listen(s, 1)) { perror("bind"); return 1; }
    socklen_t len = sizeof addr;
    getsockname(s, (struct sockaddr*)&addr, &len);
    printf("serving socket://%s:%d clks_per_bit %d\n", host.c_str(), ntohs(addr.sin_port), CLKS_PER_BIT);
    fflush(stdout);
    int next = -1;
    while (!g_stop) {
        int c = next;
        if (c < 0) {
            struct pollfd p = {s, POLLIN, 0};
            if (poll(&p, 1, 200) <= 0) continue;
            c = accept(s, nullptr, nullptr);
            if (c < 0) continue;
        }
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(c, F_SETFL, O_NONBLOCK);
        unsigned long long start = board.cycles;
        printf("client connected\n");
        fflush(stdout);
        next = serve(board, c, false, s);
        close(c);
        printf("client closed cycles %llu\n", board.cycles - start);
        fflush(stdout);
    }
    close(s);
    printf("stopped cycles %llu\n", board.cycles);
    return 0;
}
