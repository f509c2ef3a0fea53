package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/internal/mutate"
	"github.com/dynamerge/dynamerge/store"
)

// The poison finder: a child process of this test binary feeds candidate
// changes to automerge-go one by one, announcing each before trying it. When
// automerge-go aborts the child, the last announced candidate is poison.
const (
	envPoisonChild = "DYNAMERGE_E2E_POISON_CHILD" // path of the candidates file
	envPoisonFrom  = "DYNAMERGE_E2E_POISON_FROM"  // first candidate to try
)

// poisonCase is a crafted change with the history it applies to.
type poisonCase struct {
	Name   string `json:"name"`
	Base   []byte `json:"base"`   // change chunks the record holds first
	Change []byte `json:"change"` // the crafted change
}

// poisonChildMain is the child side of findPoison.
func poisonChildMain() int {
	b, err := os.ReadFile(os.Getenv(envPoisonChild))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var cases []poisonCase
	if err := json.Unmarshal(b, &cases); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	from, _ := strconv.Atoi(os.Getenv(envPoisonFrom))
	for i := from; i < len(cases); i++ {
		// Unbuffered: the line must be out before automerge-go may abort.
		fmt.Fprintf(os.Stdout, "try %d\n", i)
		d := automerge.New()
		if err := d.LoadIncremental(cases[i].Base); err == nil {
			_ = d.LoadIncremental(cases[i].Change)
			_ = d.Heads()
		}
	}
	fmt.Fprintln(os.Stdout, "done")
	return 0
}

// poisonBase returns a small history whose last change sets many map keys
// (the kind of change the known automerge-go abort needs): base chunks and
// the last change.
func poisonBase(tb testing.TB) (base, last []byte) {
	tb.Helper()
	d := automerge.New()
	if err := d.SetActorID("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"); err != nil {
		tb.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []func() error{
		func() error { return d.RootMap().Set("title", "groceries") },
		func() error { return d.Path("tags", "x").Set(true) },
		func() error {
			for _, k := range []string{"b", "a", "d", "c", "f", "e"} {
				if err := d.Path("m", k).Set(k); err != nil {
					return err
				}
			}
			return d.RootMap().Set("n", int64(3))
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			tb.Fatalf("poison base step %d: %v", i, err)
		}
		if _, err := d.Commit(fmt.Sprintf("c%d", i), automerge.CommitOptions{Time: &at}); err != nil {
			tb.Fatalf("poison base commit %d: %v", i, err)
		}
	}
	cs, err := d.Changes()
	if err != nil {
		tb.Fatal(err)
	}
	return automerge.SaveChanges(cs[:len(cs)-1]), cs[len(cs)-1].Save()
}

// findPoison tries single-byte flips (checksums fixed) of the last change of
// poisonBase in child processes and returns up to max that abort them.
func findPoison(tb testing.TB, max int) []poisonCase {
	tb.Helper()
	base, last := poisonBase(tb)
	_, bodyStart, _, err := mutate.Header(last)
	if err != nil {
		tb.Fatal(err)
	}
	var cases []poisonCase
	for pos := bodyStart; pos < len(last); pos++ {
		for _, x := range []byte{0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff} {
			cases = append(cases, poisonCase{
				Name:   fmt.Sprintf("flip pos %d xor %#02x of a %d-byte change", pos, x, len(last)),
				Base:   base,
				Change: mutate.Flip(last, pos, x),
			})
		}
	}
	b, err := json.Marshal(cases)
	if err != nil {
		tb.Fatal(err)
	}
	file := filepath.Join(tb.TempDir(), "candidates.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	var found []poisonCase
	for from := 0; from < len(cases) && len(found) < max; {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), envPoisonChild+"="+file, envPoisonFrom+"="+strconv.Itoa(from))
		out, err := cmd.StdoutPipe()
		if err != nil {
			tb.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		last, done := -1, false
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if line == "done" {
				done = true
			} else if n, ok := strings.CutPrefix(line, "try "); ok {
				last, _ = strconv.Atoi(n)
			}
		}
		werr := cmd.Wait()
		if done && werr == nil {
			break
		}
		if last < 0 {
			tb.Fatalf("poison finder child died before trying anything: %v", werr)
		}
		found = append(found, cases[last])
		from = last + 1
	}
	tb.Logf("poison finder: %d candidates, %d abort automerge-go", len(cases), len(found))
	return found
}

// committedPoison loads the samples of crdt/worker/testdata/poison (see its
// README): base.bin is the history, every other .bin a crafted change.
func committedPoison(tb testing.TB) []poisonCase {
	tb.Helper()
	dir := filepath.Join("..", "crdt", "worker", "testdata", "poison")
	base, err := os.ReadFile(filepath.Join(dir, "base.bin"))
	if err != nil {
		tb.Logf("no committed poison samples: %v", err)
		return nil
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.bin"))
	var out []poisonCase
	for _, f := range files {
		if filepath.Base(f) == "base.bin" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, poisonCase{Name: "crdt/worker/testdata/poison/" + filepath.Base(f), Base: base, Change: b})
	}
	return out
}

func TestPoisonIsolation(t *testing.T) {
	// Both kinds of abort: the committed samples ("can only compare map
	// keys") and what the finder turns up here ("index out of bounds").
	poisons := slices.Concat(committedPoison(t), findPoison(t, 3))
	if len(poisons) == 0 {
		t.Fatal("no poison sample: none committed in crdt/worker/testdata/poison and no single-byte flip of the sample change aborts automerge-go")
	}
	s := newStack(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// 8 well-behaved clients keep syncing valid changes to their records.
	const clients = 8
	acks := newAckLog()
	var syncs atomic.Int64
	var wg sync.WaitGroup
	for i := range clients {
		r := newReplica(t, store.Key{Collection: "poison", ID: fmt.Sprintf("good%d", i)}, fmt.Sprintf("%032x", 0xbeef00+i))
		rng := newRand(uint64(i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				r.edit(t, rng)
				if err := r.sync(ctx, t, s.client, acks); err != nil {
					if ctx.Err() == nil {
						t.Errorf("good client %d: %v", i, err)
					}
					return
				}
				syncs.Add(1)
			}
		}()
	}

	const rounds = 3
	refused := 0
	start := time.Now()
	for round := range rounds {
		for j, pc := range poisons {
			key := store.Key{Collection: "poison", ID: fmt.Sprintf("bad-%d-%d", round, j)}
			res, err := s.client.Sync(ctx, []client.Doc{{Collection: key.Collection, ID: key.ID, Changes: pc.Base}})
			if err != nil || res[0].Err != nil {
				t.Fatalf("%s: pushing the valid history: %v %+v", key, err, res)
			}
			baseHeads := sortedHeads(res[0].Heads)
			// The poison rides in one request with a valid sibling, which
			// must still be merged.
			sib := store.Key{Collection: "poison", ID: fmt.Sprintf("sib-%d-%d", round, j)}
			res, err = s.client.Sync(ctx, []client.Doc{
				{Collection: key.Collection, ID: key.ID, Have: baseHeads, Changes: pc.Change},
				{Collection: sib.Collection, ID: sib.ID, Changes: pc.Base},
			})
			if err != nil {
				t.Fatalf("%s (%s): whole request failed: %v", key, pc.Name, err)
			}
			if e := res[0].Err; e == nil || e.Code != "invalid_change" {
				t.Errorf("%s (%s): per-doc error %v, want invalid_change", key, pc.Name, e)
			} else {
				refused++
			}
			if e := res[1].Err; e != nil {
				t.Errorf("%s: valid sibling of a poison push refused: %v", sib, e)
			}
			rec, err := s.client.Get(ctx, key.Collection, key.ID)
			if err != nil {
				t.Fatalf("%s: GET after poison: %v", key, err)
			}
			if got := sortedHeads(rec.Heads); fmt.Sprint(got) != fmt.Sprint(baseHeads) {
				t.Errorf("%s: heads %v after a refused push, want %v (nothing stored)", key, got, baseHeads)
			}
		}
	}
	// Let the good clients run on a little past the last poison.
	time.Sleep(200 * time.Millisecond)
	cancel()
	wg.Wait()
	if syncs.Load() == 0 {
		t.Error("the good clients never completed a sync")
	}
	t.Logf("%d poison pushes refused as invalid_change in %v; %d good syncs, %d acked changes, no errors",
		refused, time.Since(start).Round(time.Millisecond), syncs.Load(), acks.count())
}
