package protocol

import (
	"fmt"
	"slices"
	"strings"
)

// TypeScriptPath is where TypeScript renders to, from the module root.
const TypeScriptPath = "browser/src/protocol.gen.ts"

// TypeScript renders the package's codes, statuses and patterns as the
// TypeScript module the browser library imports, so the two clients share
// one definition (protocol_test.go fails when the committed file differs;
// go test ./protocol -update rewrites it).
func TypeScript() string {
	var b strings.Builder
	b.WriteString("// Code generated from the Go package protocol (go test ./protocol -update). DO NOT EDIT.\n\n")
	b.WriteString("/** PROTOCOL_CODES lists every error code the server sends. */\n")
	b.WriteString("export const PROTOCOL_CODES = [\n")
	for _, c := range Codes {
		fmt.Fprintf(&b, "  %q,\n", c)
	}
	b.WriteString("] as const;\n\n")
	b.WriteString("/** ProtocolCode is one of PROTOCOL_CODES. */\n")
	b.WriteString("export type ProtocolCode = (typeof PROTOCOL_CODES)[number];\n\n")
	b.WriteString("/** DOC_CODES lists the codes of per-record errors in a sync answer. */\n")
	b.WriteString("export const DOC_CODES = [" + quoteAll(DocCodes) + "] as const;\n\n")
	b.WriteString("const STATUS_CODES: Readonly<Record<number, ProtocolCode>> = {\n")
	byStatus := map[int]string{}
	for _, c := range Codes {
		if st := Status(c); st != 0 && CodeForStatus(st) == c {
			byStatus[st] = c
		}
	}
	for _, st := range []int{408, 502, 504} { // statuses with a code of another's
		byStatus[st] = CodeForStatus(st)
	}
	statuses := make([]int, 0, len(byStatus))
	for st := range byStatus {
		statuses = append(statuses, st)
	}
	slices.Sort(statuses)
	for _, st := range statuses {
		fmt.Fprintf(&b, "  %d: %q,\n", st, byStatus[st])
	}
	b.WriteString("};\n\n")
	b.WriteString("/**\n * codeOfStatus is the code of an error answer whose body is not the\n * protocol's (a proxy's page): its status's code, or internal for other\n * 5xx, bad_request for other 4xx.\n */\n")
	b.WriteString("export function codeOfStatus(status: number): ProtocolCode {\n")
	fmt.Fprintf(&b, "  return STATUS_CODES[status] ?? (status >= 500 ? %q : %q);\n}\n\n", CodeInternal, CodeBadRequest)
	b.WriteString("/** Patterns of collection names, record ids and change hashes. */\n")
	fmt.Fprintf(&b, "export const COLLECTION_PATTERN = /%s/;\n", CollectionPattern)
	fmt.Fprintf(&b, "export const ID_PATTERN = /%s/;\n", IDPattern)
	fmt.Fprintf(&b, "export const HASH_PATTERN = /%s/;\n", HashPattern)
	return b.String()
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
