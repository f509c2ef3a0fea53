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
	requireUnix(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	script, want := readmeSection(t, string(readme), "## Writing plain JSON")

	bin := os.Getenv("DYNAMERGE_BIN")
	if bin == "" {
		bin = buildBinary(t)
	}
	addr := freeAddr(t)
	p := startProc(t, bin, addr, filepath.Join(t.TempDir(), "readme.db"))
	defer p.stop(t)
	script = strings.ReplaceAll(script, "http://127.0.0.1:8080", "http://"+addr)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the README's examples fail: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	// curl -s prints each answer without a newline: split at the objects.
	answers := regexp.MustCompile(`\}\{"`).ReplaceAllString(stdout.String(), "}\n{\"")
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
// with heading, joined, and the first ```json block after them.
func readmeSection(t *testing.T, readme, heading string) (script, json string) {
	t.Helper()
	i := strings.Index(readme, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README has no section %q", heading)
	}
	sec := readme[i+1:]
	if j := strings.Index(sec[len(heading):], "\n## "); j >= 0 {
		sec = sec[:len(heading)+j]
	}
	block := regexp.MustCompile("(?s)```(sh|json)\n(.*?)```")
	var sh []string
	for _, m := range block.FindAllStringSubmatch(sec, -1) {
		switch {
		case m[1] == "sh":
			sh = append(sh, m[2])
		case json == "":
			json = strings.TrimSpace(m[2])
		}
	}
	if len(sh) == 0 || json == "" {
		t.Fatalf("README section %q: %d sh blocks, json %q", heading, len(sh), json)
	}
	return strings.Join(sh, "\n"), json
}
