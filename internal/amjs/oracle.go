package amjs

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// EnvSkipNode names the variable that, set to 1, makes Start skip the test
// instead of failing it when Node or Automerge JS is missing.
const EnvSkipNode = "DYNAMERGE_SKIP_NODE"

// Oracle is the Node process running tools/node/oracle.mjs.
type Oracle struct {
	dir  string // tools/node
	node string // the node binary

	mu   sync.Mutex // serialises requests, and guards proc
	proc *process   // nil until the first request, or after the process died
}

// process is one run of node oracle.mjs.
type process struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	done chan struct{} // closed once the process has exited
	err  error         // how it exited, set before done is closed
}

// shared is the Oracle of this test binary: Node and Automerge JS take a
// good part of a second to start, so every test uses the same process. It is never
// stopped: the process ends when the test binary exits and its stdin
// closes.
var shared struct {
	once sync.Once
	o    *Oracle
	err  error
}

// Start returns the Oracle of this test binary, starting it on first use.
// It fails tb, saying to run `make deps`, when Node or tools/node's
// node_modules is missing, or skips tb instead when DYNAMERGE_SKIP_NODE=1.
func Start(tb testing.TB) *Oracle {
	tb.Helper()
	node, dir, err := locate()
	if err != nil {
		if os.Getenv(EnvSkipNode) == "1" {
			tb.Skipf("Automerge JS oracle unavailable (%v); skipped because %s=1", err, EnvSkipNode)
		}
		tb.Fatalf("Automerge JS oracle unavailable: %v: run `make deps` (npm ci in tools/node), or set %s=1 to skip", err, EnvSkipNode)
	}
	shared.once.Do(func() {
		o := &Oracle{dir: dir, node: node}
		// A first request now, so that a broken install fails here, once,
		// with its reason, rather than in every test's first call.
		if shared.err = o.call(map[string]string{"cmd": "ping"}, &struct{}{}); shared.err == nil {
			shared.o = o
		}
	})
	if shared.err != nil {
		tb.Fatalf("amjs: starting %s: %v", filepath.Join(dir, "oracle.mjs"), shared.err)
	}
	return shared.o
}

// locate finds node and tools/node, walking up from the working directory
// (go test runs in the package's folder) to the module root.
func locate() (node, dir string, err error) {
	node, err = exec.LookPath("node")
	if err != nil {
		return "", "", err
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			dir = filepath.Join(d, "tools", "node")
			break
		}
		if filepath.Dir(d) == d {
			return "", "", fmt.Errorf("no go.mod above %s", wd)
		}
	}
	for _, f := range []string{"oracle.mjs", filepath.Join("node_modules", "@automerge", "automerge", "package.json")} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return "", "", err
		}
	}
	return node, dir, nil
}

func (o *Oracle) startProcess() (*process, error) {
	cmd := exec.Command(o.node, "oracle.mjs")
	cmd.Dir = o.dir
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// status is the part of an answer every command has.
type status struct {
	OK      bool   `json:"ok"`
	Error   string `json:"error"`
	Exiting bool   `json:"exiting"` // the process ends after this answer
}

// roundTrip sends one request line and returns the answer line and its
// status.
func (o *Oracle) roundTrip(req []byte) ([]byte, status, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.proc != nil {
		select {
		case <-o.proc.done: // it died between requests
			_ = o.proc.in.Close()
			o.proc = nil
		default:
		}
	}
	if o.proc == nil {
		p, err := o.startProcess()
		if err != nil {
			return nil, status{}, fmt.Errorf("amjs: start node: %w", err)
		}
		o.proc = p
	}
	p := o.proc
	// oracle.mjs reads a whole line before it answers, so writing all of a
	// large request before reading cannot deadlock.
	_, err := p.in.Write(req)
	var line []byte
	if err == nil {
		line, err = p.out.ReadBytes('\n')
	}
	var st status
	if err == nil {
		if err = json.Unmarshal(line, &st); err != nil {
			err = fmt.Errorf("answer %.200q: %w", line, err)
		}
	}
	if err != nil || st.Exiting {
		// The process is gone, unusable, or leaving: end it, and start
		// afresh on the next request.
		o.proc = nil
		_ = p.in.Close()
		if err != nil {
			_ = p.cmd.Process.Kill()
		}
		<-p.done
	}
	if err != nil {
		return nil, status{}, fmt.Errorf("amjs: oracle.mjs failed (%v; exit: %v)", err, p.err)
	}
	return line, st, nil
}

// call sends req and decodes a successful answer into res.
func (o *Oracle) call(req, res any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("amjs: encode request: %w", err)
	}
	line, st, err := o.roundTrip(append(b, '\n'))
	if err != nil {
		return err
	}
	if !st.OK {
		return &refusal{st.Error}
	}
	if err := json.Unmarshal(line, res); err != nil {
		return fmt.Errorf("amjs: answer %.200q: %w", line, err)
	}
	return nil
}

// Random makes the random history of seed with the real Automerge JS API
// and returns it with what Automerge JS says of its merged document. The
// same seed and options give the same Case, byte for byte.
func (o *Oracle) Random(seed int64, opts RandomOptions) (Case, error) {
	req := struct {
		Cmd     string `json:"cmd"`
		Seed    int64  `json:"seed,string"` // a JS number holds 53 bits
		Actors  int    `json:"actors,omitempty"`
		Steps   int    `json:"steps,omitempty"`
		Profile string `json:"profile,omitempty"`
		Opts    struct {
			PasteMax int `json:"pasteMax,omitempty"`
		} `json:"opts"`
	}{Cmd: "random", Seed: seed, Actors: opts.Actors, Steps: opts.Steps, Profile: string(opts.Profile)}
	req.Opts.PasteMax = opts.PasteMax
	var c Case
	if err := o.call(req, &c); err != nil {
		return Case{}, fmt.Errorf("random seed %d %+v: %w", seed, opts, err)
	}
	return c, nil
}

// Load loads data (any concatenation of document and change chunks) into an
// empty document with Automerge.loadIncremental and describes the result.
// It returns an error wrapping ErrRefused when Automerge JS throws, leaves
// a change out (missing dependencies, trailing bytes), or when
// Automerge.load of data, or of the document's own save, gives other heads
// or another view.
func (o *Oracle) Load(data []byte) (LoadResult, error) {
	req := struct {
		Cmd  string `json:"cmd"`
		Data []byte `json:"data"`
	}{"load", nonNil(data)}
	var res LoadResult
	if err := o.call(req, &res); err != nil {
		return LoadResult{}, err
	}
	return res, nil
}

// ViewAt returns the JSON view of data (loaded as by Load) at heads
// (Automerge.view), or an error wrapping ErrRefused when Automerge JS
// refuses data or the document lacks one of heads.
func (o *Oracle) ViewAt(data []byte, heads []string) (json.RawMessage, error) {
	req := struct {
		Cmd   string   `json:"cmd"`
		Data  []byte   `json:"data"`
		Heads []string `json:"heads"`
	}{"view_at", nonNil(data), heads}
	if req.Heads == nil {
		req.Heads = []string{}
	}
	var res struct {
		View json.RawMessage `json:"view"`
	}
	if err := o.call(req, &res); err != nil {
		return nil, err
	}
	return res.View, nil
}

// Check asks whether Automerge JS accepts changes on top of base (either may
// be empty): see CheckResult. The error is only for a failed process.
func (o *Oracle) Check(base, changes []byte) (CheckResult, error) {
	req := struct {
		Cmd     string `json:"cmd"`
		Base    []byte `json:"base"`
		Changes []byte `json:"changes"`
	}{"check", nonNil(base), nonNil(changes)}
	var res CheckResult
	var r *refusal
	switch err := o.call(req, &res); {
	case errors.As(err, &r):
		return CheckResult{Error: r.msg}, nil
	case err != nil:
		return CheckResult{}, err
	}
	res.OK = true
	return res, nil
}

// nonNil makes nil bytes marshal as "" rather than null.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
