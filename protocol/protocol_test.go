package protocol

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestCodes(t *testing.T) {
	if !slices.IsSorted(Codes) || len(slices.Compact(slices.Clone(Codes))) != len(Codes) {
		t.Errorf("Codes %v: want sorted, unique", Codes)
	}
	for _, c := range DocCodes {
		if !slices.Contains(Codes, c) {
			t.Errorf("DocCodes has %q, which Codes lacks", c)
		}
	}
	for code, st := range statusOf {
		if !slices.Contains(Codes, code) {
			t.Errorf("a status for unknown code %q", code)
		}
		// A client reading only the status gets the code back, except
		// where two codes share one (invalid_id and deleted refine
		// bad_request and not_found).
		if got := CodeForStatus(st); got != code && code != CodeInvalidID && code != CodeDeleted {
			t.Errorf("CodeForStatus(Status(%s)=%d) = %s", code, st, got)
		}
	}
	for st, want := range map[int]string{418: CodeBadRequest, 408: CodeBadRequest, 501: CodeInternal, 502: CodeUnavailable, 504: CodeUnavailable} {
		if got := CodeForStatus(st); got != want {
			t.Errorf("CodeForStatus(%d) = %s, want %s", st, got, want)
		}
	}
	if Status(CodeMissingDeps) != 0 || Status(CodeGone) != http.StatusGone {
		t.Error("per-doc-only codes have no status; gone is 410")
	}
}

func TestValid(t *testing.T) {
	for _, tt := range []struct {
		valid func(string) bool
		ok    []string
		bad   []string
	}{
		{ValidCollection, []string{"todos", "a", "0-x_y", strings.Repeat("a", 64)}, []string{"", "Todos", "-x", "_x", "a/b", strings.Repeat("a", 65)}},
		{ValidID, []string{"0b9f6c1e-0d7a-4a57-9a55-3f1f3d0c2b7e", "X", "_", strings.Repeat("a", 128)}, []string{"", "a/b", "a.b", "a b", strings.Repeat("a", 129)}},
		{ValidHash, []string{strings.Repeat("ab", 32)}, []string{strings.Repeat("AB", 32), strings.Repeat("a", 63), strings.Repeat("a", 65)}},
	} {
		for _, s := range tt.ok {
			if !tt.valid(s) {
				t.Errorf("%q refused", s)
			}
		}
		for _, s := range tt.bad {
			if tt.valid(s) {
				t.Errorf("%q accepted", s)
			}
		}
	}
}

var update = flag.Bool("update", false, "rewrite "+TypeScriptPath)

// TestTypeScript: the browser library's protocol module is what
// TypeScript renders from this package, and its error codes include every
// one of the package's.
func TestTypeScript(t *testing.T) {
	path := filepath.Join("..", TypeScriptPath)
	want := TypeScript()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./protocol -update writes it)", err)
	}
	if string(got) != want {
		t.Errorf("%s is not what package protocol renders: run go test ./protocol -update", TypeScriptPath)
	}
	for st := 400; st < 600; st++ {
		re := regexp.MustCompile(fmt.Sprintf(`(?m)^  %d: "(\w+)",$`, st))
		m := re.FindStringSubmatch(want)
		if m != nil && m[1] != CodeForStatus(st) {
			t.Errorf("TypeScript maps %d to %s, Go to %s", st, m[1], CodeForStatus(st))
		}
	}
	// The library's own list (browser/src/errors.ts) has every code.
	src, err := os.ReadFile(filepath.Join("..", "browser", "src", "errors.ts"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), "PROTOCOL_CODES") {
		for _, c := range Codes {
			if !strings.Contains(string(src), fmt.Sprintf("%q", c)) {
				t.Errorf("browser/src/errors.ts lacks the code %q", c)
			}
		}
	}
}
