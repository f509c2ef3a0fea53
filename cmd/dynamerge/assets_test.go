package main

import (
	"bytes"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/dynamerge/dynamerge/browser"
)

// TestRunServesDemo checks the binary's wiring of the embedded browser
// files: the demo app at "/" and the library at "/dynamerge.js", as the
// browser needs them (module content type, revalidated by ETag).
func TestRunServesDemo(t *testing.T) {
	addr := startRun(t, []string{"--store", "bolt:" + filepath.Join(t.TempDir(), "db")}, nil).addr

	tests := []struct {
		path, file, contentType string
	}{
		{"/", "index.html", "text/html; charset=utf-8"},
		{"/dynamerge.js", browser.BundleName, "text/javascript; charset=utf-8"},
		{"/app.js", "app.js", "text/javascript; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get("http://" + addr + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := resp.StatusCode, http.StatusOK; got != want {
				t.Fatalf("status=%d, want %d", got, want)
			}
			if got, want := resp.Header.Get("Content-Type"), tt.contentType; got != want {
				t.Errorf("Content-Type=%q, want %q", got, want)
			}
			if got, want := resp.Header.Get("Cache-Control"), "no-cache"; got != want {
				t.Errorf("Cache-Control=%q, want %q", got, want)
			}
			if resp.Header.Get("ETag") == "" {
				t.Error("no ETag")
			}
			want, err := fs.ReadFile(browser.Assets(), tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(body, want) {
				t.Errorf("served %d bytes, want the embedded %s (%d bytes)", len(body), tt.file, len(want))
			}
		})
	}
}
