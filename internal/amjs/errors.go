package amjs

import "errors"

// ErrRefused is wrapped by the error of a request that Automerge JS refuses:
// bytes it throws on, or of which it leaves a change out; heads the document
// lacks; options the generator rejects. The error's text ends with the
// oracle's message.
var ErrRefused = errors.New("amjs: refused by Automerge JS")

// refusal is an ErrRefused with Automerge JS's message.
type refusal struct{ msg string }

func (r *refusal) Error() string { return ErrRefused.Error() + ": " + r.msg }
func (r *refusal) Unwrap() error { return ErrRefused }
