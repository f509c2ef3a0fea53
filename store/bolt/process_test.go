package bolt_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/bolt"
)

// The child process of the tests below: it is this test binary, run with
// these variables set, so that the store is written by another process.
const (
	envChildPath = "DYNAMERGE_BOLT_CHILD_PATH"
	envChildMode = "DYNAMERGE_BOLT_CHILD_MODE" // "kill": append until killed; "hold": open and wait
)

// TestMain lets the test binary double as the child process.
func TestMain(m *testing.M) {
	if path := os.Getenv(envChildPath); path != "" {
		os.Exit(child(path, os.Getenv(envChildMode)))
	}
	os.Exit(m.Run())
}

// child appends to record c/r, printing "acked <seq>" after each Append
// returns, then kills itself without Close after the 50th ("kill"); or
// opens the store, prints "open" and waits to be killed ("hold").
func child(path, mode string) int {
	s, err := bolt.Open(path, nil)
	if err != nil {
		fmt.Println("open failed:", err)
		return 1
	}
	if mode == "hold" {
		fmt.Println("open")
		// Sleep, not select{}: with every goroutine blocked on channels
		// the runtime would call it a deadlock and exit, unlocking the file.
		for {
			time.Sleep(time.Hour)
		}
	}
	k := store.Key{Collection: "c", ID: "r"}
	for seq := uint64(1); ; seq++ {
		e := store.Entry{Seq: seq, Changes: []byte(fmt.Sprint("change ", seq))}
		if err := s.Append(context.Background(), k, e, store.AppendMeta{Heads: []string{fmt.Sprint("h", seq)}}); err != nil {
			fmt.Println("append failed:", err)
			return 1
		}
		fmt.Println("acked", seq)
		if seq == 50 {
			// As a crash would: no Close, no flush, no deferred anything.
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
}

func startChild(tb testing.TB, path, mode string) (*exec.Cmd, *bufio.Scanner) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChildPath+"="+path, envChildMode+"="+mode)
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, bufio.NewScanner(out)
}

// TestReopen_AfterWriterKilled: every Append the killed writer saw return is
// in the file when another process opens it.
func TestReopen_AfterWriterKilled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	cmd, lines := startChild(t, path, "kill")
	var acked uint64
	for lines.Scan() {
		line := lines.Text()
		n, ok := strings.CutPrefix(line, "acked ")
		if !ok {
			t.Fatalf("child: %s", line)
		}
		if acked, _ = strconv.ParseUint(n, 10, 64); acked == 0 {
			t.Fatalf("child: %s", line)
		}
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed by SIGKILL", err)
	}
	if acked != 50 {
		t.Fatalf("child acknowledged %d appends, want 50", acked)
	}

	s := mustOpen(t, path, nil)
	rec, err := s.Load(t.Context(), store.Key{Collection: "c", ID: "r"})
	if err != nil {
		t.Fatalf("Load after the writer was killed = %v", err)
	}
	if rec.Seq < acked || uint64(len(rec.Entries)) != rec.Seq {
		t.Fatalf("after the writer was killed: seq %d with %d entries, want at least the %d acknowledged", rec.Seq, len(rec.Entries), acked)
	}
	for i, e := range rec.Entries {
		if want := fmt.Sprint("change ", i+1); string(e.Changes) != want {
			t.Fatalf("entry %d = %q, want %q", i+1, e.Changes, want)
		}
	}
}

// TestOpen_HeldByAnotherProcess: Open fails fast with ErrLocked while
// another process has the file open, and succeeds once it is gone.
func TestOpen_HeldByAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	cmd, lines := startChild(t, path, "hold")
	if !lines.Scan() || lines.Text() != "open" {
		t.Fatalf("child did not open the store: %q", lines.Text())
	}
	start := time.Now()
	_, err := bolt.Open(path, &bolt.Options{LockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, bolt.ErrLocked) {
		t.Fatalf("Open of a file held by another process = %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Open took %v to give up with a 200ms timeout", d)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	mustOpen(t, path, nil)
}
