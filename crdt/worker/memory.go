package worker

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// pageSize is the unit of /proc/<pid>/statm.
var pageSize = int64(os.Getpagesize())

// selfRSS returns this process's resident set size in bytes.
func selfRSS() (int64, error) { return statmRSS("/proc/self/statm") }

// pidRSS returns the resident set size of process pid in bytes.
func pidRSS(pid int) (int64, error) {
	return statmRSS("/proc/" + strconv.Itoa(pid) + "/statm")
}

// statmRSS reads the second field of a statm file (resident pages). It is
// what the kernel charges the process, C allocations included, which the Go
// runtime's own statistics do not see.
func statmRSS(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("worker: rss: %w", err)
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, fmt.Errorf("worker: rss: %s: unexpected %q", path, b)
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("worker: rss: %s: %w", path, err)
	}
	return pages * pageSize, nil
}
