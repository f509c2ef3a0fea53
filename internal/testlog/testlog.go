// Package testlog is the logger of the module's tests: quiet unless asked.
// It imports nothing of the project, so every package's tests may use it.
package testlog

import (
	"io"
	"log/slog"
	"os"
)

// EnvLog names the variable that, set to a level (debug, info, warn,
// error), makes New write to stderr.
const EnvLog = "DYNAMERGE_TEST_LOG"

// New discards everything, unless DYNAMERGE_TEST_LOG names a level: then it
// writes that level and above to stderr.
func New() *slog.Logger {
	var level slog.Level
	if v := os.Getenv(EnvLog); v == "" || level.UnmarshalText([]byte(v)) != nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
