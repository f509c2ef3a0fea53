package crdt

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/internal/mutate"
)

// envApplyChild makes the test binary an automerge-go apply child (TestMain).
const envApplyChild = "DYNAMERGE_CRDT_APPLY_CHILD"

// Child protocol. stdin: uvarint-length-prefixed frames, the first the base
// (change chunks, possibly empty), then one candidate per frame. stdout: one
// line per candidate, in order:
//
//	ok <head>,<head>...   applied, every hash present, heads survive Save+Load
//	refused <reason>      Apply returned an error
//	roundtrip <reason>    applied, but Save then LoadDoc changes the heads
//
// A candidate that aborts the process has no line: the parent counts it as
// crashed and starts a new child with the candidates after it.
func applyChild(in io.Reader, out io.Writer) int {
	r := bufio.NewReader(in)
	w := bufio.NewWriter(out)
	readFrame := func() ([]byte, error) {
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return nil, err
		}
		b := make([]byte, n)
		_, err = io.ReadFull(r, b)
		return b, err
	}
	baseBytes, err := readFrame()
	if err != nil {
		fmt.Fprintln(os.Stderr, "apply child: base:", err)
		return 2
	}
	base := NewDoc()
	if len(baseBytes) > 0 {
		cs, err := Split(baseBytes)
		if err == nil {
			err = base.Apply(cs)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "apply child: base:", err)
			return 2
		}
	}
	for {
		cand, err := readFrame()
		if errors.Is(err, io.EOF) {
			return 0
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "apply child:", err)
			return 2
		}
		fmt.Fprintln(w, applyOne(base, cand))
		// Flush per candidate: the parent must know how far we got if the
		// next one aborts the process.
		if err := w.Flush(); err != nil {
			return 2
		}
	}
}

func applyOne(base *Doc, cand []byte) string {
	cs, err := Split(cand)
	if err != nil {
		return "refused split: " + oneLine(err)
	}
	am, err := base.am.Fork()
	if err != nil {
		return "refused fork: " + oneLine(err)
	}
	d := &Doc{am: am}
	if err := d.Apply(cs); err != nil {
		return "refused " + oneLine(err)
	}
	heads := strings.Join(HashStrings(d.Heads()), ",")
	ld, err := LoadDoc(d.Save())
	if err != nil {
		return "roundtrip " + oneLine(err)
	}
	if got := strings.Join(HashStrings(ld.Heads()), ","); got != heads {
		return "roundtrip heads " + heads + " become " + got
	}
	return "ok " + heads
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }

// goApply applies each candidate to base in child processes, re-spawning a
// child after a crash, and returns one outcome per candidate ("crashed" for
// those that took a child down).
func goApply(tb testing.TB, base []byte, cands [][]byte) []string {
	tb.Helper()
	out := make([]string, 0, len(cands))
	for len(out) < len(cands) {
		rest := cands[len(out):]
		got, hung := runChild(tb, base, rest)
		out = append(out, got...)
		switch {
		case hung:
			out = append(out, "hung")
		case len(got) < len(rest):
			out = append(out, "crashed")
		}
	}
	return out
}

func runChild(tb testing.TB, base []byte, cands [][]byte) (res []string, hung bool) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envApplyChild+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		defer stdin.Close()
		bw := bufio.NewWriter(stdin)
		for _, f := range append([][]byte{base}, cands...) {
			bw.Write(binary.AppendUvarint(nil, uint64(len(f))))
			if _, err := bw.Write(f); err != nil {
				return // the child died; the reader sees it
			}
		}
		bw.Flush()
	}()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	// A candidate that keeps automerge-go busy past the deadline counts as
	// a hang: the child is killed and the next one starts after it.
	timer := time.NewTimer(childDeadline)
	defer timer.Stop()
loop:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				break loop
			}
			res = append(res, l)
			timer.Reset(childDeadline)
		case <-timer.C:
			hung = true
			_ = cmd.Process.Kill()
			for range lines {
			}
			break loop
		}
	}
	err = cmd.Wait()
	if hung {
		return res, true
	}
	if len(res) == len(cands) && err != nil {
		tb.Fatalf("apply child failed after all candidates: %v\n%s", err, stderr.Bytes())
	}
	if len(res) < len(cands) && err == nil {
		tb.Fatalf("apply child exited cleanly after %d of %d candidates\n%s", len(res), len(cands), stderr.Bytes())
	}
	return res, false
}

// childDeadline bounds the time automerge-go may spend on one candidate.
const childDeadline = 5 * time.Second

// compressChunk turns an uncompressed change chunk into a compressed one
// (type 2, raw DEFLATE body) with the checksum of the uncompressed chunk.
// A chunk whose framing the mutation broke is returned as it is.
func compressChunk(chunk []byte) []byte {
	typ, start, n, err := mutate.Header(chunk)
	if err != nil || typ != chunkChange {
		return chunk
	}
	var z bytes.Buffer
	zw, _ := flate.NewWriter(&z, flate.BestCompression)
	zw.Write(chunk[start : start+n])
	zw.Close()
	sum := sha256.Sum256(chunk[8 : start+n])
	out := append([]byte(nil), chunkMagic...)
	out = append(out, sum[:4]...)
	out = append(out, chunkCompressedChange)
	out = appendUleb(out, uint64(z.Len()))
	return append(out, z.Bytes()...)
}

// diffSource is one real change and the history it applies to.
type diffSource struct {
	name     string
	base     []byte
	chunk    []byte // uncompressed
	compress bool   // mutate the uncompressed chunk, then send it compressed
}

func diffSources(tb testing.TB) []diffSource {
	tb.Helper()
	byName := map[string][]Change{}
	for _, g := range loadGolden(tb) {
		cs, err := Split(g.changes)
		if err != nil {
			tb.Fatal(err)
		}
		byName[g.name] = cs
	}
	pick := func(name string, i int, compress bool) diffSource {
		cs := byName[name]
		if i < 0 {
			i += len(cs)
		}
		return diffSource{name: fmt.Sprintf("%s[%d]", name, i), base: Join(cs[:i]), chunk: uncompressed(tb, cs[i]), compress: compress}
	}
	return []diffSource{
		pick("scalars", 0, false),
		pick("nested", 1, false),
		pick("merge", 2, false),
		pick("threeactors", 2, false),
		pick("counters", 1, false),
		pick("text", 1, false),
		pick("longtext", -1, false),
		pick("bytes", 0, true),
		pick("compressed", 0, true),
	}
}

// uncompressed returns c as an uncompressed change chunk.
func uncompressed(tb testing.TB, c Change) []byte {
	tb.Helper()
	if c.Raw[8] == chunkChange {
		return c.Raw
	}
	_, start, n, err := mutate.Header(c.Raw)
	if err != nil {
		tb.Fatal(err)
	}
	body, err := inflate(c.Raw[start:start+n], DefaultMaxChunkBytes)
	if err != nil {
		tb.Fatal(err)
	}
	out := append([]byte(nil), chunkMagic...)
	out = append(out, c.Hash[:4]...)
	out = append(out, chunkChange)
	out = appendUleb(out, uint64(len(body)))
	return append(out, body...)
}

// positions returns the byte positions to corrupt: all of them for small
// chunks; for large ones the header and first columns in full, then a
// stride through the rest, to keep the test within its time budget.
func positions(n int) []int {
	var ps []int
	for i := 0; i < n; i++ {
		if n <= 700 || i < 400 || i >= n-100 || i%23 == 0 {
			ps = append(ps, i)
		}
	}
	return ps
}

var diffXORs = []byte{0x01, 0x02, 0x40, 0x80, 0xff}

// TestDifferentialJS corrupts real changes one byte at a time (checksums
// fixed up) and checks the promise of Split: every change that Split
// accepts and that automerge-go then applies cleanly loads in Automerge JS
// 3.5 with the same heads, also after a save and load on either side.
func TestDifferentialJS(t *testing.T) {
	if testing.Short() {
		t.Skip("differential test skipped in -short mode")
	}
	js := startJSChecker(t)
	start := time.Now()
	type counts struct{ mutations, splitRefused, goRefused, goCrashed, goHung, goRoundtrip, accepted, jsAgreed int }
	var total counts
	var mu sync.Mutex
	var wg sync.WaitGroup
	type job struct {
		src   diffSource
		cands [][]byte
		where []string // "pos ^ xor" of each candidate
		goRes []string
	}
	// Report the first few failures of each kind in full; count the rest.
	reported := map[string]int{}
	var dump io.Writer = io.Discard
	if path := os.Getenv("DYNAMERGE_DIFF_DUMP"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		dump = f
	}
	fail := func(kind, format string, args ...any) {
		fmt.Fprintf(dump, kind+": "+format+"\n", args...)
		reported[kind]++
		if reported[kind] <= 5 {
			t.Errorf(format, args...)
		}
	}
	var jobs []*job
	for _, src := range diffSources(t) {
		j := &job{src: src}
		seen := map[string]bool{}
		var c counts
		for _, pos := range positions(len(src.chunk)) {
			for _, x := range diffXORs {
				m := mutate.Flip(src.chunk, pos, x)
				if src.compress {
					m = compressChunk(m)
				}
				if seen[string(m)] {
					continue // e.g. flips of checksum bytes, undone by the fix-up
				}
				seen[string(m)] = true
				c.mutations++
				if _, err := Split(m); err != nil {
					if !errors.Is(err, ErrInvalidChange) {
						t.Fatalf("%s: Split error %v does not wrap ErrInvalidChange", src.name, err)
					}
					c.splitRefused++
					continue
				}
				j.cands = append(j.cands, m)
				j.where = append(j.where, fmt.Sprintf("byte %d ^ %#02x", pos, x))
			}
		}
		total.mutations += c.mutations
		total.splitRefused += c.splitRefused
		jobs = append(jobs, j)
	}
	// Two children at a time: the machine has 2 cores.
	sem := make(chan struct{}, 2)
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			t0 := time.Now()
			t.Logf("%s: %d bytes, %d candidates", j.src.name, len(j.src.chunk), len(j.cands))
			res := goApply(t, j.src.base, j.cands)
			t.Logf("%s: %d candidates applied by automerge-go in %v", j.src.name, len(j.cands), time.Since(t0).Round(time.Millisecond))
			mu.Lock()
			j.goRes = res
			mu.Unlock()
		}()
	}
	wg.Wait()

	for _, j := range jobs {
		var acc [][]byte
		var accHeads, accWhere []string
		for i, r := range j.goRes {
			switch {
			case r == "crashed":
				total.goCrashed++
			case r == "hung":
				total.goHung++
			case strings.HasPrefix(r, "refused"):
				total.goRefused++
			case strings.HasPrefix(r, "roundtrip"):
				total.goRoundtrip++
				fail("roundtrip", "%s, %s: Split accepted a change that does not survive Save+Load in automerge-go: %s\n%x", j.src.name, j.where[i], r, j.cands[i])
			case strings.HasPrefix(r, "ok "):
				acc = append(acc, j.cands[i])
				accWhere = append(accWhere, j.where[i])
				accHeads = append(accHeads, strings.TrimPrefix(r, "ok "))
			default:
				t.Fatalf("apply child said %q", r)
			}
		}
		total.accepted += len(acc)
		t0 := time.Now()
		jsRes := js.checkAll(t, j.src.base, acc)
		t.Logf("%s: %d accepted checked by JS in %v", j.src.name, len(acc), time.Since(t0).Round(time.Millisecond))
		for i, r := range jsRes {
			switch {
			case !r.OK:
				fail("js", "%s, %s: accepted by Split and automerge-go, refused by JS: %s\n%x", j.src.name, accWhere[i], r.Error, acc[i])
			case strings.Join(r.Heads, ",") != accHeads[i]:
				fail("heads", "%s, %s: heads differ: Go %s, JS %s\n%x", j.src.name, accWhere[i], accHeads[i], strings.Join(r.Heads, ","), acc[i])
			default:
				total.jsAgreed++
			}
		}
	}
	t.Logf("differential: %d sources, %d mutations: %d refused by Split, %d refused by Doc.Apply (history checks or automerge-go), %d crashed and %d hung the apply child, %d failing Go save/load, %d accepted, %d agreed by JS (%v)",
		len(jobs), total.mutations, total.splitRefused, total.goRefused, total.goCrashed, total.goHung, total.goRoundtrip, total.accepted, total.jsAgreed, time.Since(start).Round(time.Millisecond))
	if len(reported) > 0 {
		t.Errorf("failures by kind (first 5 of each shown): %v", reported)
	}
	if total.accepted == 0 {
		t.Errorf("no mutation was accepted: the test exercises nothing past Split")
	}
}
