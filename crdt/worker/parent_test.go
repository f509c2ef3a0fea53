package worker

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

const envParentHelper = "DYNAMERGE_TEST_PARENT_HELPER"

// TestParentHelper is the parent process of TestParentDeath: it starts a
// pool, prints its workers' pids and waits to be killed.
func TestParentHelper(t *testing.T) {
	if os.Getenv(envParentHelper) == "" {
		t.Skip("helper process of TestParentDeath")
	}
	p, err := NewPool(Options{Procs: 2, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("pids", strings.Trim(fmt.Sprint(p.pids()), "[]"))
	time.Sleep(time.Minute)
}

// TestParentDeath kills a pool's process with SIGKILL (no Close): its
// workers must not outlive it.
func TestParentDeath(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestParentHelper$", "-test.v")
	cmd.Env = append(os.Environ(), envParentHelper+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	var pids []int
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if f, ok := strings.CutPrefix(sc.Text(), "pids "); ok {
			for _, s := range strings.Fields(f) {
				pid, err := strconv.Atoi(s)
				if err != nil {
					t.Fatal(err)
				}
				pids = append(pids, pid)
			}
			break
		}
	}
	if got, want := len(pids), 2; got != want {
		t.Fatalf("helper reported %d workers, want %d", got, want)
	}
	for _, pid := range pids {
		if !processAlive(pid) {
			t.Fatalf("worker %d not running before its parent died", pid)
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for processAlive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("worker %d still running 5s after its parent was killed", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
