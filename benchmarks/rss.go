package benchmarks

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// ProcessRSS returns the resident set size of this process in bytes, read
// from /proc/self/statm (Linux only; elsewhere it returns an error).
// automerge-go keeps its documents in C memory that the Go heap does not
// see, so RSS rather than runtime.MemStats is what tells the real cost.
func ProcessRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, fmt.Errorf("benchmarks: rss: %w", err)
	}
	// statm: size resident shared text lib data dt, in pages.
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, fmt.Errorf("benchmarks: rss: malformed /proc/self/statm %q", b)
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("benchmarks: rss: resident pages: %w", err)
	}
	return pages * int64(os.Getpagesize()), nil
}
