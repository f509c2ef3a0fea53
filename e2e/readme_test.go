package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dynamerge/dynamerge/client"
)

// TestREADMEWrites runs the curl examples of the README's "Writing plain
// JSON" section, as written, against the binary (DYNAMERGE_BIN when set,
// else built) started as `go run ./cmd/dynamerge` starts: the address is
// the only thing changed. Each example must answer what its comment says,
// and the last one the JSON the README shows (hashes aside).
func TestREADMEWrites(t *testing.T) {
	readme, addr, run := readmeServer(t)
	ctx := t.Context()
	script, want := readmeSection(t, readme, "## Writing plain JSON")
	// curl -s prints each answer without a newline: split at the objects.
	answers := regexp.MustCompile(`\}\{"`).ReplaceAllString(run(script), "}\n{\"")
	lines := strings.Split(strings.TrimSpace(answers), "\n")
	if len(lines) != 8 {
		t.Fatalf("%d answers, want 8:\n%s", len(lines), answers)
	}
	for i, want := range []string{
		`"doc":{"done":false,"title":"Call the bank"}`, // POST
		`"doc":{"done":false,"tags":["home"],"title":"Buy milk"}`,
		`"doc":{"done":true,"tags":["home"],"title":"Buy milk"}`,
		`"doc":{"done":true,"tags":["home"],"title":"Buy oat milk"}`,
		`"doc":{"done":true,"tags":["home","urgent"],"title":"Buy oat milk"}`,
		`"code":"precondition_failed"`,
		`"doc":{"done":false,"tags":["home"],"title":"Buy milk"}`, // restore
	} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("answer %d = %s, want it to hold %s", i+1, lines[i], want)
		}
	}
	hash := regexp.MustCompile(`[0-9a-f]{64}`)
	if got, want := hash.ReplaceAllString(lines[7], "h"), hash.ReplaceAllString(want, "h"); got != want {
		t.Errorf("last answer = %s\nREADME shows  %s", lines[7], want)
	}
	rec, err := client.New("http://"+addr).Get(ctx, "todos", "shopping")
	if err != nil || string(rec.Doc) != `{"done":false,"tags":["home"],"title":"Buy milk"}` {
		t.Fatalf("GET after the examples = %+v, %v", rec, err)
	}
}

// readmeSection returns the ```sh blocks of the README section that starts
// with heading, joined, and the first ```json block after one of them.
func readmeSection(t *testing.T, readme, heading string) (script, json string) {
	t.Helper()
	var sh []string
	for _, b := range readmeBlocks(t, readme, heading) {
		sh = append(sh, b.sh)
		if json == "" {
			json = b.json
		}
	}
	if json == "" {
		t.Fatalf("README section %q has no json block after its sh blocks", heading)
	}
	return strings.Join(sh, "\n"), json
}

// TestREADMECurl runs the README's curl walk-through as written, in order,
// against the binary started as `go run ./cmd/dynamerge` starts: the sync
// and the JSON view ("One sync with curl"), the delete and undelete
// ("Deleting records"), and the history ("History: who changed what, and
// when"). Each command block followed by a ```json block must answer it,
// with hashes (which the README may shorten to "abcd1234…"), times and
// acceptance times aside.
func TestREADMECurl(t *testing.T) {
	readme, _, run := readmeServer(t)
	for _, heading := range []string{"## One sync with curl", "## Deleting records", "## History: who changed what, and when"} {
		for _, b := range readmeBlocks(t, readme, heading) {
			got := run(b.sh)
			switch {
			case b.json != "":
				if g, w := normalizeAnswer(got), normalizeAnswer(b.json); g != w {
					t.Errorf("%s:\n%s\nanswers   %s\nREADME shows %s", heading, b.sh, got, b.json)
				}
			case heading == "## Deleting records":
				// Four commands, each answer as its comment says.
				answers := strings.Split(strings.TrimSpace(regexp.MustCompile(`\}\s*\{"`).ReplaceAllString(got, "}\n{\"")), "\n")
				want := []string{`"deleted":true`, `"code":"deleted"`, `"deleted":true`, `"doc":{"done":false,"title":"Buy milk"}`}
				if len(answers) != len(want) {
					t.Fatalf("%s: %d answers, want %d:\n%s", heading, len(answers), len(want), got)
				}
				for i, w := range want {
					if !strings.Contains(answers[i], w) {
						t.Errorf("%s: answer %d = %s, want it to hold %s", heading, i+1, answers[i], w)
					}
				}
			}
		}
	}
}

// readmeServer starts the binary (DYNAMERGE_BIN when set, else built) as
// `go run ./cmd/dynamerge` starts it, on a fresh file and a free address,
// and returns the README, the address, and run, which runs a README script
// against it (the address being the only thing changed) and returns what
// it printed.
func readmeServer(t *testing.T) (readme, addr string, run func(script string) string) {
	t.Helper()
	requireUnix(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	bin := os.Getenv("DYNAMERGE_BIN")
	if bin == "" {
		bin = buildBinary(t)
	}
	addr = freeAddr(t)
	p := startProc(t, bin, addr, filepath.Join(t.TempDir(), "readme.db"))
	t.Cleanup(func() { p.stop(t) })
	run = func(script string) string {
		t.Helper()
		script = strings.ReplaceAll(script, "http://127.0.0.1:8080", "http://"+addr)
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("README example fails: %v\n%s\nstdout:\n%s\nstderr:\n%s", err, script, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	return string(b), addr, run
}

// readmeBlock is one ```sh block of the README and the ```json block of
// its answer, if any.
type readmeBlock struct{ sh, json string }

// readmeBlocks returns the ```sh blocks of the README section that starts
// with heading, each with the ```json block that follows it before any
// other block: what its last command answers.
func readmeBlocks(t *testing.T, readme, heading string) []readmeBlock {
	t.Helper()
	i := strings.Index(readme, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README has no section %q", heading)
	}
	sec := readme[i+1:]
	if j := strings.Index(sec[len(heading):], "\n## "); j >= 0 {
		sec = sec[:len(heading)+j]
	}
	var out []readmeBlock
	re := regexp.MustCompile("(?s)```(sh|json)\n(.*?)```\n")
	ms := re.FindAllStringSubmatchIndex(sec, -1)
	for k, m := range ms {
		if sec[m[2]:m[3]] != "sh" {
			continue
		}
		b := readmeBlock{sh: sec[m[4]:m[5]]}
		if k+1 < len(ms) && sec[ms[k+1][2]:ms[k+1][3]] == "json" {
			b.json = strings.TrimSpace(sec[ms[k+1][4]:ms[k+1][5]])
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		t.Fatalf("README section %q has no sh block", heading)
	}
	return out
}

// normalizeAnswer puts hashes and actor ids (whole or shortened with "…"),
// change times and acceptance times out of a JSON answer.
func normalizeAnswer(s string) string {
	s = regexp.MustCompile(`[0-9a-f]{8,64}…?`).ReplaceAllString(strings.TrimSpace(s), "H")
	s = regexp.MustCompile(`"time":\d+`).ReplaceAllString(s, `"time":0`)
	return regexp.MustCompile(`"at":"[^"]*"`).ReplaceAllString(s, `"at":"T"`)
}
