package crdt

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// nodeDir is the folder of the Node tooling (tools/node).
var nodeDir = filepath.Join("..", "tools", "node")

// needNode returns the path of node, or fails the test telling how to get
// the tooling; with DYNAMERGE_SKIP_NODE=1 it skips instead.
func needNode(tb testing.TB) string {
	tb.Helper()
	skip := os.Getenv("DYNAMERGE_SKIP_NODE") == "1"
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(nodeDir, "node_modules", "@automerge", "automerge", "package.json"))
	}
	if err != nil {
		if skip {
			tb.Skipf("Node tooling missing (%v); skipped because DYNAMERGE_SKIP_NODE=1", err)
		}
		tb.Fatalf("Node tooling missing (%v): run `make deps` (npm ci in tools/node), or set DYNAMERGE_SKIP_NODE=1 to skip", err)
	}
	return node
}

// jsChecker drives tools/node/check-changes.mjs.
type jsChecker struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

type jsResult struct {
	OK    bool     `json:"ok"`
	Heads []string `json:"heads"`
	Error string   `json:"error"`
}

func startJSChecker(tb testing.TB) *jsChecker {
	tb.Helper()
	cmd := exec.Command(needNode(tb), "check-changes.mjs")
	cmd.Dir = nodeDir
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	j := &jsChecker{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20)}
	tb.Cleanup(func() {
		in.Close()
		_ = cmd.Wait()
	})
	return j
}

// checkAll asks JS about many (base, changes) pairs; requests are written
// from a goroutine so that a full pipe cannot deadlock the exchange.
func (j *jsChecker) checkAll(tb testing.TB, base []byte, changes [][]byte) []jsResult {
	tb.Helper()
	errc := make(chan error, 1)
	go func() {
		enc := json.NewEncoder(j.in)
		b64 := base64.StdEncoding.EncodeToString(base)
		for _, c := range changes {
			if err := enc.Encode(map[string]string{"base": b64, "changes": base64.StdEncoding.EncodeToString(c)}); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	out := make([]jsResult, len(changes))
	for i := range out {
		line, err := j.out.ReadBytes('\n')
		if err != nil {
			tb.Fatalf("check-changes.mjs: reading answer %d: %v", i, err)
		}
		if err := json.Unmarshal(line, &out[i]); err != nil {
			tb.Fatalf("check-changes.mjs: answer %q: %v", line, err)
		}
	}
	if err := <-errc; err != nil {
		tb.Fatalf("check-changes.mjs: writing: %v", err)
	}
	return out
}

// jsLoadDoc loads a saved document with tools/node/load-doc.mjs.
func jsLoadDoc(tb testing.TB, doc []byte) (heads []string, view json.RawMessage) {
	tb.Helper()
	cmd := exec.Command(needNode(tb), "load-doc.mjs")
	cmd.Dir = nodeDir
	cmd.Stdin = bytes.NewReader(doc)
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		tb.Fatalf("load-doc.mjs: %v", err)
	}
	var res struct {
		Heads []string        `json:"heads"`
		View  json.RawMessage `json:"view"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		tb.Fatalf("load-doc.mjs: %q: %v", out, err)
	}
	return res.Heads, res.View
}
