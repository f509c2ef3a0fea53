package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/internal/mutate"
)

func TestApply_NeedBase(t *testing.T) {
	p := newTestPool(t, Options{Procs: 2})
	ctx := ctxTimeout(t, 30*time.Second)
	r := newRecord(t, "todos/a")
	r.grow(t, 5) // history the worker has never seen

	steps := []struct {
		name      string
		do        func() error
		wantBases int64
	}{
		{"first push loads the base", func() error { return r.push(ctx, t, p) }, 1},
		{"next push reuses the document", func() error { return r.push(ctx, t, p) }, 1},
		{"after Evict the base is loaded again", func() error { p.Evict(r.key); return r.push(ctx, t, p) }, 2},
		{"a push at a seq the worker is not at reloads", func() error {
			// Another instance appended seq 9 behind this pool's back.
			r.grow(t, 1)
			return r.push(ctx, t, p)
		}, 3},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got, want := r.bases.Load(), st.wantBases; got != want {
			t.Fatalf("%s: base called %d times, want %d", st.name, got, want)
		}
	}

	// JSON and Save at the current seq need no base.
	json, at, err := p.JSON(ctx, r.key, r.seq(), r.base(r.seq()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := at, heads(t, r.doc); !slices.Equal(got, want) {
		t.Fatalf("JSON heads=%v, want %v", got, want)
	}
	if got, want := string(json), fmt.Sprintf(`"n":%d`, r.seq()); !contains(got, want) {
		t.Fatalf("JSON=%s, want it to contain %s", got, want)
	}
	saved, err := p.Save(ctx, r.key, r.seq(), r.base(r.seq()))
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := automerge.Load(saved)
	if err != nil {
		t.Fatalf("load saved document: %v", err)
	}
	if got, want := heads(t, loaded), heads(t, r.doc); !slices.Equal(got, want) {
		t.Fatalf("saved heads=%v, want %v", got, want)
	}
	if got, want := r.bases.Load(), int64(3); got != want {
		t.Fatalf("base called %d times by JSON/Save, want %d", got, want)
	}

	// JSON at older heads (time travel).
	second, err := crdt.Split(r.log[1])
	if err != nil {
		t.Fatal(err)
	}
	oldHeads := []string{second[0].Hash.String()}
	json, at, err = p.JSON(ctx, r.key, r.seq(), r.base(r.seq()), oldHeads)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"n":2`; !contains(string(json), want) {
		t.Fatalf("JSON at seq 2 heads=%s, want it to contain %s", json, want)
	}
	if got, want := at, oldHeads; !slices.Equal(got, want) {
		t.Fatalf("JSON at old heads reflects %v, want %v", got, want)
	}

	// JSON at a seq the worker is not at asks for the base.
	if _, _, err := p.JSON(ctx, r.key, 3, r.base(3), nil); err != nil {
		t.Fatal(err)
	}
	if got, want := r.bases.Load(), int64(4); got != want {
		t.Fatalf("base called %d times, want %d", got, want)
	}
}

func contains(s, sub string) bool { return len(sub) == 0 || len(s) >= len(sub) && indexOf(s, sub) >= 0 }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestApply_Errors(t *testing.T) {
	p := newTestPool(t, Options{Procs: 1})
	ctx := ctxTimeout(t, 30*time.Second)
	r := newRecord(t, "notes/errors")
	r.grow(t, 3)
	if err := r.push(ctx, t, p); err != nil {
		t.Fatal(err)
	}
	fork := r.offLog(t, 2)
	good, skipped := fork[0], fork[1] // skipped depends on good
	flipped := mutate.Flip(good, len(good)-1, 0x01)

	for _, tc := range []struct {
		name      string
		changes   []byte
		want      error
		wantBases int64 // base calls for the push after the error
	}{
		{"garbage", []byte("not an automerge change at all"), crdt.ErrInvalidChange, 0},
		{"empty", nil, crdt.ErrInvalidChange, 0},
		{"bad checksum", append(append([]byte(nil), good[:4]...), append([]byte{0, 0, 0, 0}, good[8:]...)...), crdt.ErrInvalidChange, 0},
		{"trailing bytes", append(append([]byte(nil), good...), 0), crdt.ErrInvalidChange, 0},
		{"missing deps", skipped, crdt.ErrMissingDeps, 1},
		{"two chained changes in one push", append(append([]byte(nil), good...), skipped...), nil, 0},
		{"flipped value byte", flipped, nil, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantBases < 0 {
				// Whether a flipped value applies is automerge's call; this
				// case only checks that the pool answers and stays usable.
				_ = p.Apply(ctx, r.key, r.seq(), r.seq()+1, r.base(r.seq()), tc.changes)
				p.Evict(r.key)
				return
			}
			before := r.bases.Load()
			err := p.Apply(ctx, r.key, r.seq(), r.seq()+1, r.base(r.seq()), tc.changes)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				// It went in: the record moved on.
				r.log = append(r.log, tc.changes)
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Apply error=%v, want %v", err, tc.want)
			}
			if errors.Is(err, ErrPoison) {
				t.Fatalf("Apply error=%v is ErrPoison; it must not kill a worker", err)
			}
			// The record is still usable; after a failed automerge apply
			// the document was dropped and is loaded again.
			if err := r.push(ctx, t, p); err != nil {
				t.Fatalf("push after the error: %v", err)
			}
			if got, want := r.bases.Load()-before, tc.wantBases; got != want {
				t.Fatalf("base called %d times after the error, want %d", got, want)
			}
		})
	}
}

// loadPoison reads the poison corpus: the base history and the crafted
// changes that abort automerge-go on top of it (e2e's poison finder proves
// they still do).
func loadPoison(tb testing.TB) (base []byte, poisons map[string][]byte) {
	tb.Helper()
	base, err := os.ReadFile(filepath.Join(poisonDir, "base.bin"))
	if err != nil {
		tb.Fatalf("read poison base: %v", err)
	}
	files, err := filepath.Glob(filepath.Join(poisonDir, "[0-9]*.bin"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no poison corpus in %s (%v)", poisonDir, err)
	}
	poisons = make(map[string][]byte)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		poisons[filepath.Base(f)] = b
	}
	return base, poisons
}

func poisonBase(base []byte) BaseFunc {
	return func() (Base, error) { return Base{Seq: 2, Changes: base}, nil }
}

// TestApply_Poison: the crafted changes that abort automerge-go are refused
// as invalid (crdt.Doc.Apply's checks stop them before automerge-go sees
// them), and a request that does kill its worker (abortPrefix) is refused
// with ErrPoison after one retry in isolation. Either way the pool keeps
// serving this record and others.
func TestApply_Poison(t *testing.T) {
	base, poisons := loadPoison(t)
	p := newTestPool(t, Options{Procs: 2})
	ctx := ctxTimeout(t, 60*time.Second)
	stillWorks := func(t *testing.T, keys ...string) {
		t.Helper()
		for _, key := range keys {
			r := newRecord(t, key)
			r.grow(t, 2)
			if err := r.push(ctx, t, p); err != nil {
				t.Fatalf("push to %s after the poison: %v", key, err)
			}
		}
	}
	for name, poison := range poisons {
		t.Run("crafted/"+name, func(t *testing.T) {
			before := p.pids()
			err := p.Apply(ctx, "poison/"+name, 2, 3, poisonBase(base), poison)
			if !errors.Is(err, crdt.ErrInvalidChange) {
				t.Fatalf("Apply error=%v, want crdt.ErrInvalidChange", err)
			}
			if errors.Is(err, ErrPoison) {
				t.Logf("%s got past validation and killed a worker: %v", name, err)
			} else if got := p.pids(); !slices.Equal(got, before) {
				t.Fatalf("workers %v became %v, but the change was refused before automerge-go", before, got)
			}
			stillWorks(t, "poison/"+name, "other/"+name)
		})
	}
	t.Run("abort", func(t *testing.T) {
		r := newRecord(t, abortPrefix+"a")
		r.grow(t, 2)
		before := p.pids()
		err := r.push(ctx, t, p)
		if !errors.Is(err, ErrPoison) {
			t.Fatalf("Apply error=%v, want ErrPoison", err)
		}
		if !errors.Is(err, crdt.ErrInvalidChange) {
			t.Fatalf("Apply error=%v does not wrap crdt.ErrInvalidChange", err)
		}
		stillWorks(t, "after-abort/a", "after-abort/b")
		after := p.pids()
		if slices.Equal(after, before) {
			t.Fatalf("workers %v after the abort: want the dead one replaced", after)
		}
		for _, pid := range after {
			if !processAlive(pid) {
				t.Fatalf("pool lists worker %d, which is dead", pid)
			}
		}
	})
}

// TestApply_PoisonLoop pushes poison (crafted changes, and requests that
// abort their worker) in a loop while 8 goroutines push valid changes to
// their own records: none of them may ever see an error.
func TestApply_PoisonLoop(t *testing.T) {
	base, poisons := loadPoison(t)
	p := newTestPool(t, Options{Procs: 2})
	ctx := ctxTimeout(t, 60*time.Second)
	dur := 3 * time.Second
	if testing.Short() {
		dur = time.Second
	}
	stop := make(chan struct{})
	time.AfterFunc(dur, func() { close(stop) })

	var wg sync.WaitGroup
	pushes := make([]int, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newRecord(t, fmt.Sprintf("loop/%d", g))
			r.grow(t, 10)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := r.push(ctx, t, p); err != nil {
					t.Errorf("goroutine %d, push %d: %v", g, pushes[g], err)
					return
				}
				pushes[g]++
			}
		}()
	}
	var refused, aborted int
	func() {
		for i := 0; ; i++ {
			for name, poison := range poisons {
				select {
				case <-stop:
					return
				default:
				}
				err := p.Apply(ctx, fmt.Sprintf("poison/%s/%d", name, i), 2, 3, poisonBase(base), poison)
				if !errors.Is(err, crdt.ErrInvalidChange) {
					t.Errorf("poison %s: error=%v, want crdt.ErrInvalidChange", name, err)
					return
				}
				refused++
			}
			r := newRecord(t, fmt.Sprintf("%s%d", abortPrefix, i))
			r.grow(t, 1)
			if err := r.push(ctx, t, p); !errors.Is(err, ErrPoison) {
				t.Errorf("abort %d: error=%v, want ErrPoison", i, err)
				return
			}
			aborted++
		}
	}()
	wg.Wait()
	total := 0
	for _, n := range pushes {
		if n == 0 {
			t.Errorf("a goroutine made no progress: %v", pushes)
		}
		total += n
	}
	t.Logf("%v: %d crafted changes refused, %d requests killed their worker twice and were refused, %d valid pushes by 8 goroutines, none failed",
		dur, refused, aborted, total)
	if refused == 0 || aborted == 0 {
		t.Fatal("no poison was pushed")
	}
}

// TestTimeout stops a worker (SIGSTOP) with a request in flight: the
// watchdog kills it, and the request succeeds on the replacement.
func TestTimeout(t *testing.T) {
	p := newTestPool(t, Options{Procs: 1, Timeout: 300 * time.Millisecond})
	ctx := ctxTimeout(t, 30*time.Second)
	r := newRecord(t, "stuck/a")
	r.grow(t, 3)
	pid := p.pids()[0]
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := r.push(ctx, t, p); err != nil {
		t.Fatalf("push to a stopped worker: %v", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("push took %v, less than the timeout: did it reach the stopped worker?", d)
	}
	if processAlive(pid) {
		// Reaped by the pool: /proc/<pid> is gone.
		t.Fatalf("stopped worker %d still exists", pid)
	}
}

func TestStartFailure(t *testing.T) {
	for _, tc := range []struct {
		name    string
		command []string
	}{
		{"no such command", []string{"/nonexistent/dynamerge"}},
		{"exits at once", []string{"/bin/false"}},
		{"not a worker", []string{"/bin/cat"}}, // echoes the handshake back
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			p, err := NewPool(Options{Procs: 1, Command: tc.command, Logger: testLogger(t)})
			if err == nil {
				p.Close()
				t.Fatal("NewPool: no error")
			}
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("NewPool error=%v, want ErrUnavailable", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("NewPool took %v to fail", d)
			}
		})
	}
}

// TestStartBackoff makes workers unstartable after the pool is up: requests
// fail fast with ErrUnavailable instead of spinning, and the pool recovers
// when starting works again.
func TestStartBackoff(t *testing.T) {
	p := newTestPool(t, Options{Procs: 1})
	ctx := ctxTimeout(t, 30*time.Second)
	s := p.slots[0]
	s.mu.Lock() // get reads Command under it
	good := p.opts.Command
	p.opts.Command = []string{"/bin/false"}
	s.mu.Unlock()
	if err := syscall.Kill(p.pids()[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r := newRecord(t, "backoff/a")
	deadline := time.Now().Add(5 * time.Second)
	var err error
	starts := 0
	for time.Now().Before(deadline) {
		if err = r.push(ctx, t, p); errors.Is(err, ErrUnavailable) {
			starts++
			if starts >= 50 {
				break
			}
			continue
		}
		break
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("push with unstartable workers: %v, want ErrUnavailable", err)
	}
	s.mu.Lock()
	failures := s.failures
	p.opts.Command = good
	s.retryAt = time.Time{}
	s.mu.Unlock()
	if failures > 10 {
		t.Fatalf("%d start attempts for %d failed requests: no back-off", failures, starts)
	}
	if err := r.push(ctx, t, p); err != nil {
		t.Fatalf("push once workers start again: %v", err)
	}
}

// TestCrashLoop starts workers that exit on their own soon after their
// handshake: the pool must back off instead of restarting them in a tight
// loop, and fail requests meanwhile with ErrUnavailable.
func TestCrashLoop(t *testing.T) {
	t.Setenv(envExitAfter, "20ms")
	p := newTestPool(t, Options{Procs: 1})
	s := p.slots[0]
	time.Sleep(time.Second)
	s.mu.Lock()
	failures := s.failures
	s.mu.Unlock()
	// Without back-off a worker that lives 20 ms restarts ~50 times a
	// second; with it, 100+200+400 ms fill the second after 2 free restarts.
	if failures < 2 || failures > 8 {
		t.Fatalf("%d early deaths in 1s, want between 2 and 8", failures)
	}
	r := newRecord(t, "loop/a")
	err := r.push(ctxTimeout(t, 5*time.Second), t, p)
	if !errors.Is(err, ErrUnavailable) && err != nil {
		t.Fatalf("push to a crash-looping pool: %v, want ErrUnavailable (or success)", err)
	}
	t.Logf("%d early deaths in 1s; push: %v", failures, err)
}

// TestCancel_WaitingForIsolation: a request that waits while its shard is
// held for a suspect's confirmation gives up when its context ends.
func TestCancel_WaitingForIsolation(t *testing.T) {
	p := newTestPool(t, Options{Procs: 1})
	s := p.slots[0]
	s.iso.Lock() // as a suspect being confirmed would
	r := newRecord(t, "iso/a")
	start := time.Now()
	err := r.push(ctxTimeout(t, 50*time.Millisecond), t, p)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("push while the shard is isolated: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("push gave up after %v", d)
	}
	s.iso.Unlock()
	if err := r.push(ctxTimeout(t, 10*time.Second), t, p); err != nil {
		t.Fatalf("push after isolation: %v", err)
	}
}

// BenchmarkApply_Hot measures one push of one small change to a record the
// worker holds: the cost of the process boundary plus automerge's apply.
func BenchmarkApply_Hot(b *testing.B) {
	p := newTestPool(b, Options{Procs: 1})
	ctx := context.Background()
	r := newRecord(b, "bench/a")
	r.grow(b, 100)
	if err := r.push(ctx, b, p); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		c := r.next(b)
		from := r.seq()
		b.StartTimer()
		if err := p.Apply(ctx, r.key, from, from+1, r.base(from), c); err != nil {
			b.Fatal(err)
		}
		r.log = append(r.log, c)
	}
}
