package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/meshguard/meshguard/internal/hashchain"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Work with meshguard's tamper-evident logs",
	}
	var expectLast string
	verify := &cobra.Command{
		Use:   "verify FILE...",
		Short: "Check a hash-chained log (decision log, rollout audit trail) for edited, removed or inserted lines",
		Long: `Verify the hash chain of a JSON-lines log meshguard wrote with one: the decision
log with decision_log.hash_chain, and the rollout controller's audit.jsonl. Every
line carries "prev", the SHA-256 of the line before; the first break is reported
with its line number.

Give rotated files oldest first (decisions.jsonl.2 decisions.jsonl.1 decisions.jsonl):
each file's first line must then link to the previous file's last. A change to
the very last line has no successor to reveal it: record the last hash this
command prints, and pass it later with --expect-last.

Exit status: 0 the chain holds, 1 it is broken, 2 a file cannot be read.`,
		Example: `  meshguard audit verify examples/quickstart/.meshguard/rollouts/audit.jsonl
  meshguard audit verify decisions.jsonl.1 decisions.jsonl --expect-last 9f86d0…`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			var start *[sha256.Size]byte
			total := 0
			for _, path := range args {
				f, err := os.Open(path)
				if err != nil {
					return &exitError{2, err}
				}
				n, last, brk, err := hashchain.Verify(f, start)
				f.Close()
				if err != nil {
					return &exitError{2, fmt.Errorf("%s: %w", path, err)}
				}
				if brk != nil {
					fmt.Fprintf(out, "%s: BROKEN at line %d: %s\n", path, brk.Line, brk.Reason)
					return &exitError{code: 1}
				}
				fmt.Fprintf(out, "%s: %d lines, chain intact\n", path, n)
				total += n
				start = &last
			}
			last := hex.EncodeToString(start[:])
			if expectLast != "" && expectLast != last {
				fmt.Fprintf(out, "BROKEN: the last line's hash is %s, not the expected %s (the last line was changed or lines were removed from the end)\n", last, expectLast)
				return &exitError{code: 1}
			}
			fmt.Fprintf(out, "%d lines; last line's hash %s\n", total, last)
			return nil
		},
	}
	verify.Flags().StringVar(&expectLast, "expect-last", "", "the last line's hash recorded earlier (hex)")
	cmd.AddCommand(verify)
	return cmd
}
