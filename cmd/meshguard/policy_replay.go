package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshguard/meshguard/extauthz/policy"
	"github.com/meshguard/meshguard/extauthz/replay"
)

func newPolicyReplayCmd() *cobra.Command {
	var logPath, dir, set, entities string
	var asJSON, quiet bool
	cmd := &cobra.Command{
		Use:   "replay --log FILE --policies DIR",
		Short: "Re-decide the requests of a decision log against other policies",
		Long: `Re-decide every request a decision log recorded against the policies in DIR and
print what would change: a summary (same / allow→deny / deny→allow / errors) and
each changed decision with the policies that determined it, before and after.

The log must record requests: decision_log.record_request: true in the
authorizer's configuration (docs/configuration.md). Each request is evaluated as
the authorizer evaluates it — the recorded principal merged with --entities,
then the set — against the set that decided it when recorded (the route's set,
or a rollout's candidate for callers in the canary's share), or against --set.
Entries with no recorded request (a refused token, a bad route) are skipped.
Replaying a log against the policies that produced it changes nothing.

Exit status: 0 nothing changed, 1 some decisions changed (or a policy now fails
to evaluate), 2 the log or the policies could not be read.`,
		Example: `  # What would orders-v2 have decided of yesterday's traffic?
  meshguard policy replay --log decisions.jsonl --policies ./policies --set orders-v2

  # Did an edit of the policies in place change anything?
  meshguard policy replay --log decisions.jsonl --policies ./policies --entities entities.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store := policy.NewStore(dir, entities, policy.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
			if err := store.Reload(); err != nil {
				return &exitError{2, fmt.Errorf("policies: %w", err)}
			}
			f, err := os.Open(logPath)
			if err != nil {
				return &exitError{2, err}
			}
			defer f.Close()
			sum, changes, err := replay.Replay(f, store, replay.Options{Set: set})
			if err != nil {
				return &exitError{2, fmt.Errorf("%s: %w", logPath, err)}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(struct {
					Summary replay.Summary  `json:"summary"`
					Changes []replay.Change `json:"changes"`
				}{sum, changes}); err != nil {
					return &exitError{2, err}
				}
			} else {
				if !quiet {
					for _, c := range changes {
						printChange(out, c)
					}
				}
				fmt.Fprintf(out, "replayed %d of %d decisions: %d same, %d allow→deny, %d deny→allow, %d errors (%d skipped: no recorded request)\n",
					sum.Replayed, sum.Entries, sum.Same, sum.AllowToDeny, sum.DenyToAllow, sum.Errors, sum.Skipped)
			}
			if sum.Changed() {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&logPath, "log", "", "decision log (JSON lines, recorded with decision_log.record_request)")
	cmd.Flags().StringVar(&dir, "policies", "", "policy directory to decide with")
	cmd.Flags().StringVar(&set, "set", "", "decide every request with this set (default: the set that decided it)")
	cmd.Flags().StringVar(&entities, "entities", "", "Cedar entities JSON, as the authorizer's entities key")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summary and the changes as JSON")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print the summary only")
	_ = cmd.MarkFlagRequired("log")
	_ = cmd.MarkFlagRequired("policies")
	return cmd
}

func printChange(w io.Writer, c replay.Change) {
	word := map[bool]string{true: "allow", false: "deny"}
	fmt.Fprintf(w, "line %d  decision %s  route %s  %s %s %s %s\n", c.Line, c.DecisionID, orDash(c.Route), c.Principal, c.Action, c.Method, c.Path)
	fmt.Fprintf(w, "  %s: %s (%s) → %s (%s) with %s\n", c.Outcome, word[c.Was], orDash(strings.Join(c.WasPolicies, ", ")),
		word[c.Now], orDash(strings.Join(c.NowPolicies, ", ")), c.Set)
	for _, e := range c.Errors {
		fmt.Fprintf(w, "  error in %s: %s\n", e.PolicyID, e.Message)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
