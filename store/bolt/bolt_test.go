package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/bolt"
	"github.com/dynamerge/dynamerge/store/storetest"
)

// mustOpen opens a store in a fresh directory and closes it at the end of
// the test, failing it if Close fails.
func mustOpen(tb testing.TB, path string, opts *bolt.Options) *bolt.Store {
	tb.Helper()
	if path == "" {
		path = filepath.Join(tb.TempDir(), "db", "dynamerge.db")
	}
	s, err := bolt.Open(path, opts)
	if err != nil {
		tb.Fatalf("Open(%s) = %v", path, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close = %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return mustOpen(t, "", nil) })
}

// TestConformance_NoGroupCommit runs the suite with one Append per
// transaction, the path a batch falls back to when one of its Appends fails.
func TestConformance_NoGroupCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	storetest.Run(t, func(t *testing.T) store.Store { return mustOpen(t, "", &bolt.Options{MaxBatchSize: 1}) })
}

func entry(seq uint64, s string) store.Entry { return store.Entry{Seq: seq, Changes: []byte(s)} }

func meta(h string) store.AppendMeta { return store.AppendMeta{Heads: []string{h}, Size: 1} }

func TestOpen_CreatesParentsAndFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "c", "x.db")
	mustOpen(t, path, nil)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat after Open: %v", err)
	}
	if got, want := fi.Mode().Perm(), bolt.DefaultFileMode; got != want {
		t.Fatalf("file mode = %v, want %v", got, want)
	}
}

func TestOpen_SecondOpenFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	mustOpen(t, path, nil)
	tests := []struct {
		name    string
		timeout time.Duration
		atMost  time.Duration
	}{
		{"default timeout", 0, bolt.DefaultLockTimeout + time.Second},
		{"no wait", -1, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			s, err := bolt.Open(path, &bolt.Options{LockTimeout: tt.timeout})
			if err == nil {
				s.Close()
				t.Fatal("second Open of a held file succeeded")
			}
			if !errors.Is(err, bolt.ErrLocked) {
				t.Fatalf("second Open = %v, want ErrLocked", err)
			}
			if d := time.Since(start); d > tt.atMost {
				t.Fatalf("second Open took %v, want at most %v", d, tt.atMost)
			}
		})
	}
}

func TestReopen_KeepsEverything(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "x.db")
	k := store.Key{Collection: "c", ID: "r"}

	s, err := bolt.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 4; seq++ {
		if err := s.Append(ctx, k, entry(seq, fmt.Sprint("change ", seq)), meta(fmt.Sprint("h", seq))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveSnapshot(ctx, k, store.Snapshot{Seq: 2, Data: []byte("doc@2")}); err != nil {
		t.Fatal(err)
	}
	page, err := s.Feed(ctx, "c", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = mustOpen(t, path, nil)
	rec, err := s.Load(ctx, k)
	if err != nil {
		t.Fatalf("Load after reopen = %v", err)
	}
	if rec.Seq != 4 || rec.Snapshot == nil || string(rec.Snapshot.Data) != "doc@2" || len(rec.Entries) != 2 || string(rec.Entries[1].Changes) != "change 4" {
		t.Fatalf("Load after reopen = %+v", rec)
	}
	// The feed's change numbers continue: a change after reopening shows
	// after the cursor taken before it.
	if err := s.Append(ctx, k, entry(5, "change 5"), meta("h5")); err != nil {
		t.Fatal(err)
	}
	later, err := s.Feed(ctx, "c", page.Cursor, 10)
	if err != nil || len(later.Items) != 1 || later.Items[0].Heads[0] != "h5" {
		t.Fatalf("Feed after reopen = %+v, %v; want r with heads h5", later, err)
	}
}

// TestCopyWhileOpen copies the file of an open store, as a crash would leave
// it (no Close), and reads the copy.
func TestCopyWhileOpen(t *testing.T) {
	ctx := t.Context()
	s := mustOpen(t, "", nil)
	k := store.Key{Collection: "c", ID: "r"}
	for seq := uint64(1); seq <= 3; seq++ {
		if err := s.Append(ctx, k, entry(seq, fmt.Sprint("change ", seq)), meta("h")); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "copy.db")
	copyFile(t, s.Path(), dst)
	c := mustOpen(t, dst, nil)
	rec, err := c.Load(ctx, k)
	if err != nil || rec.Seq != 3 || string(rec.Entries[2].Changes) != "change 3" {
		t.Fatalf("Load from the copy = %+v, %v", rec, err)
	}
}

func copyFile(tb testing.TB, src, dst string) {
	tb.Helper()
	in, err := os.Open(src)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
}

func TestTooLarge(t *testing.T) {
	ctx := t.Context()
	s := mustOpen(t, "", &bolt.Options{MaxValueSize: 1024})
	k := store.Key{Collection: "c", ID: "r"}
	err := s.Append(ctx, k, store.Entry{Seq: 1, Changes: make([]byte, 1025)}, meta("h"))
	if !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("Append(1025 bytes) = %v, want ErrTooLarge", err)
	}
	if err := s.Append(ctx, k, store.Entry{Seq: 1, Changes: make([]byte, 1024)}, meta("h")); err != nil {
		t.Fatalf("Append(1024 bytes) = %v", err)
	}
	err = s.SaveSnapshot(ctx, k, store.Snapshot{Seq: 1, Data: make([]byte, 1025)})
	if !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("SaveSnapshot(1025 bytes) = %v, want ErrTooLarge", err)
	}
	if _, err := s.Load(ctx, k); err != nil {
		t.Fatalf("Load = %v", err)
	}
}

// TestCompaction_RemovesEntries checks what the suite leaves open: this
// store really removes compacted entries (so the file does not grow with
// history) and says ErrCompacted below the snapshot.
func TestCompaction_RemovesEntries(t *testing.T) {
	ctx := t.Context()
	s := mustOpen(t, "", nil)
	k := store.Key{Collection: "c", ID: "r"}
	for seq := uint64(1); seq <= 10; seq++ {
		if err := s.Append(ctx, k, entry(seq, "x"), meta("h")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveSnapshot(ctx, k, store.Snapshot{Seq: 7, Data: []byte("doc@7")}); err != nil {
		t.Fatal(err)
	}
	for after := range uint64(7) {
		if _, err := s.ReadLog(ctx, k, after); !errors.Is(err, store.ErrCompacted) {
			t.Fatalf("ReadLog(%d) below a snapshot at 7 = %v, want ErrCompacted", after, err)
		}
	}
	if n := bolt.CountLog(t, s); n != 3 {
		t.Fatalf("log holds %d entries after compacting 7 of 10, want 3", n)
	}
}

func TestClosed(t *testing.T) {
	s := mustOpen(t, "", nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	k := store.Key{Collection: "c", ID: "r"}
	calls := map[string]error{
		"Append":       s.Append(ctx, k, entry(1, "x"), meta("h")),
		"SaveSnapshot": s.SaveSnapshot(ctx, k, store.Snapshot{Seq: 1}),
		"Ping":         s.Ping(ctx),
	}
	_, calls["Load"] = s.Load(ctx, k)
	_, calls["ReadLog"] = s.ReadLog(ctx, k, 0)
	_, calls["Feed"] = s.Feed(ctx, "c", "", 1)
	for name, err := range calls {
		if !errors.Is(err, bolt.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

// TestClose_DuringAppends closes the store under a stream of Appends: each
// Append either succeeded (and is in the file) or failed with ErrClosed;
// none hangs, none is lost.
func TestClose_DuringAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	s, err := bolt.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	const writers = 8
	acked := make([]uint64, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			k := store.Key{Collection: "c", ID: fmt.Sprint("w", w)}
			for seq := uint64(1); ; seq++ {
				err := s.Append(context.Background(), k, entry(seq, "x"), meta("h"))
				if errors.Is(err, bolt.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Append(%s, %d) = %v", k, seq, err)
					return
				}
				acked[w] = seq
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	s = mustOpen(t, path, nil)
	for w := range writers {
		k := store.Key{Collection: "c", ID: fmt.Sprint("w", w)}
		rec, err := s.Load(t.Context(), k)
		if acked[w] == 0 {
			continue
		}
		if err != nil || rec.Seq < acked[w] {
			t.Fatalf("%s: acknowledged seq %d, store has %+v, %v", k, acked[w], rec, err)
		}
	}
}

func TestBatchedAppends_Conflicts(t *testing.T) {
	// Many Appends in flight at once, half of them conflicting: the
	// conflicts must not cost the others their place in a shared commit.
	ctx := t.Context()
	s := mustOpen(t, "", nil)
	const records = 32
	var wg sync.WaitGroup
	errs := make([][2]error, records)
	for r := range records {
		wg.Go(func() {
			k := store.Key{Collection: "c", ID: fmt.Sprint("r", r)}
			errs[r][0] = s.Append(ctx, k, entry(1, "good"), meta("h"))
			errs[r][1] = s.Append(ctx, k, entry(3, "gap"), meta("bad"))
		})
	}
	wg.Wait()
	for r, e := range errs {
		if e[0] != nil || !errors.Is(e[1], store.ErrConflict) {
			t.Fatalf("record %d: good append %v, gap append %v", r, e[0], e[1])
		}
	}
}

func TestFeed_CursorIsStrict(t *testing.T) {
	s := mustOpen(t, "", nil)
	for _, c := range []string{"0", "01", "+1", "-1", "1.5", "18446744073709551616", " 1"} {
		if _, err := s.Feed(t.Context(), "c", c, 1); !errors.Is(err, store.ErrInvalidCursor) {
			t.Errorf("Feed(cursor %q) = %v, want ErrInvalidCursor", c, err)
		}
	}
	// A well-formed cursor beyond the end is simply an empty page.
	page, err := s.Feed(t.Context(), "c", "12345", 1)
	if err != nil || len(page.Items) != 0 || page.More {
		t.Fatalf("Feed(cursor beyond the end) = %+v, %v", page, err)
	}
}

// TestBackup_WhileAppending takes a backup while Appends keep landing: the
// copy opens, and holds every Append acknowledged before the backup began.
func TestBackup_WhileAppending(t *testing.T) {
	ctx := t.Context()
	s := mustOpen(t, "", nil)
	k := store.Key{Collection: "c", ID: "r"}
	for seq := uint64(1); seq <= 20; seq++ {
		if err := s.Append(ctx, k, entry(seq, fmt.Sprint("change ", seq)), meta("h")); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		other := store.Key{Collection: "c", ID: "busy"}
		for seq := uint64(1); ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.Append(ctx, other, entry(seq, "x"), meta("h")); err != nil {
				t.Error(err)
				return
			}
		}
	})
	dst := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Backup(ctx, f)
	close(stop)
	wg.Wait()
	if err != nil || n == 0 {
		t.Fatalf("Backup = %d, %v", n, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	c := mustOpen(t, dst, nil)
	rec, err := c.Load(ctx, k)
	if err != nil || rec.Seq != 20 || string(rec.Entries[19].Changes) != "change 20" {
		t.Fatalf("Load from the backup = %+v, %v", rec, err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping on the backup = %v", err)
	}
}

func TestOpen_RefusesForeignFiles(t *testing.T) {
	tests := []struct {
		name  string
		setup func(tx *bbolt.Tx) error
	}{
		{"another application's file", func(tx *bbolt.Tx) error {
			_, err := tx.CreateBucket([]byte("users"))
			return err
		}},
		{"a future layout", func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucket([]byte("info"))
			if err != nil {
				return err
			}
			return b.Put([]byte("layout"), []byte("2"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.db")
			db, err := bbolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(tt.setup); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			s, err := bolt.Open(path, nil)
			if err == nil {
				s.Close()
			}
			if !errors.Is(err, bolt.ErrLayout) {
				t.Fatalf("Open = %v, want ErrLayout", err)
			}
			// And the file is left as it was: usable by its owner.
			db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
			if err != nil {
				t.Fatalf("reopening with bbolt after the refusal: %v", err)
			}
			db.Close()
		})
	}
}

// TestGroupCommit checks that concurrent Appends share commits, and that
// the batch limits hold.
func TestGroupCommit(t *testing.T) {
	tests := []struct {
		name   string
		opts   *bolt.Options
		shared bool // whether commits must carry more than one Append on average
	}{
		{"defaults", nil, true},
		{"MaxBatchSize 1", &bolt.Options{MaxBatchSize: 1}, false},
		{"MaxBatchBytes 1", &bolt.Options{MaxBatchBytes: 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpen(t, "", tt.opts)
			const workers, each = 32, 10
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					k := store.Key{Collection: "c", ID: fmt.Sprint("r", w)}
					for seq := uint64(1); seq <= each; seq++ {
						if err := s.Append(t.Context(), k, entry(seq, "x"), meta("h")); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			st := s.Stats()
			if st.Appends != workers*each {
				t.Fatalf("Stats().Appends = %d, want %d", st.Appends, workers*each)
			}
			if tt.shared && st.Commits*2 > st.Appends {
				t.Fatalf("%d appends took %d commits: group commit is not working", st.Appends, st.Commits)
			}
			if !tt.shared && st.Commits != st.Appends {
				t.Fatalf("%d appends took %d commits, want one each", st.Appends, st.Commits)
			}
			t.Logf("%d appends in %d commits", st.Appends, st.Commits)
		})
	}
}

// TestEmptyValues: an empty entry or snapshot is odd but legal, and must
// not read back as a missing one.
func TestEmptyValues(t *testing.T) {
	ctx := t.Context()
	s := mustOpen(t, "", nil)
	k := store.Key{Collection: "c", ID: "r"}
	for seq := uint64(1); seq <= 2; seq++ {
		if err := s.Append(ctx, k, store.Entry{Seq: seq}, store.AppendMeta{}); err != nil {
			t.Fatalf("Append(empty) = %v", err)
		}
	}
	if err := s.SaveSnapshot(ctx, k, store.Snapshot{Seq: 1}); err != nil {
		t.Fatalf("SaveSnapshot(empty) = %v", err)
	}
	rec, err := s.Load(ctx, k)
	if err != nil || rec.Snapshot == nil || len(rec.Snapshot.Data) != 0 || len(rec.Entries) != 1 || len(rec.Entries[0].Changes) != 0 {
		t.Fatalf("Load = %+v, %v; want an empty snapshot at 1 and an empty entry 2", rec, err)
	}
	page, err := s.Feed(ctx, "c", "", 0)
	if err != nil || len(page.Items) != 1 || len(page.Items[0].Heads) != 0 {
		t.Fatalf("Feed = %+v, %v; want r with no heads", page, err)
	}
}

// TestFeed_CursorPerCollection: a collection's feed cursor counts that
// collection's writes only (issue 18, item 8: the global change number
// showed every tenant the whole server's write rate).
func TestFeed_CursorPerCollection(t *testing.T) {
	s := mustOpen(t, "", nil)
	ctx := t.Context()
	appendTo := func(collection, id string, seq uint64) {
		t.Helper()
		if err := s.Append(ctx, store.Key{Collection: collection, ID: id}, entry(seq, "x"), meta("h")); err != nil {
			t.Fatalf("Append %s/%s: %v", collection, id, err)
		}
	}
	appendTo("mine", "a", 1)
	first, err := s.Feed(ctx, "mine", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 50; i++ {
		appendTo("theirs", "b", i)
	}
	appendTo("mine", "a", 2)
	next, err := s.Feed(ctx, "mine", first.Cursor, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(next.Items) != 1 || next.Items[0].ID != "a" {
		t.Fatalf("feed after %q = %+v, want the second write of a", first.Cursor, next.Items)
	}
	if got, want := []string{first.Cursor, next.Cursor}, []string{"1", "2"}; !slices.Equal(got, want) {
		t.Fatalf("cursors %q, want %q: 50 writes to another collection showed through", got, want)
	}
}
