package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshguard/meshguard/controlplane"
	"github.com/meshguard/meshguard/controlplane/rollout"
	"github.com/meshguard/meshguard/internal/contract"
)

// adminClient talks to the control plane's admin API.
type adminClient struct {
	addr, tokenFile, actor string
}

func (a *adminClient) flags(cmd *cobra.Command, commands bool) {
	cmd.Flags().StringVar(&a.addr, "admin", upCPAdmin, "control plane admin address (host:port or URL)")
	if commands {
		cmd.Flags().StringVar(&a.tokenFile, "token-file", "", "file holding the control plane's admin token (default: $MESHGUARD_ADMIN_TOKEN)")
		cmd.Flags().StringVar(&a.actor, "actor", os.Getenv("USER"), "who is asking, for the audit trail")
	}
}

func (a *adminClient) url(path string) string {
	base := a.addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return strings.TrimSuffix(base, "/") + path
}

func (a *adminClient) token() (string, error) {
	if a.tokenFile == "" {
		return os.Getenv("MESHGUARD_ADMIN_TOKEN"), nil
	}
	b, err := os.ReadFile(a.tokenFile)
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// do sends a request and decodes a 200 answer into out; any other answer
// is an error with the server's message.
func (a *adminClient) do(req *http.Request, out any) error {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("control plane admin at %s: %w", a.addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s (HTTP %d)", e.Error, resp.StatusCode)
		}
		return fmt.Errorf("control plane admin: HTTP %d: %s", resp.StatusCode, oneLine(string(body), 200))
	}
	return json.Unmarshal(body, out)
}

func newRolloutCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Watch and move per-route policy rollouts (shadow → canary → enforce)",
		Long: `A route's rollout moves it from its policy set to a candidate set: at shadow the
candidate is evaluated beside the current set and never enforced; at canary it
is enforced for a share of callers (the same callers every time, chosen by a
hash of principal and route); at enforce it is the route's set. Rollouts are
declared in the mesh file (route.rollout, docs/mesh-model.md); the control
plane's rollout controller records where each one stands and, with gates,
promotes it stage by stage and rolls it back as soon as a gate fails.

These commands talk to the control plane's admin API. Commands that move a
rollout need the admin token when the control plane has one (--token-file,
or $MESHGUARD_ADMIN_TOKEN); every move is recorded with who asked.`,
	}
	cmd.AddCommand(newRolloutStatusCmd())
	for _, v := range []struct{ verb, short, long string }{
		{"promote", "Move a rollout one step on (shadow → each canary share → enforce), gates or not",
			"Move the rollout one step on, whatever its gates say: shadow → canary (each share in turn) →\nenforce. A paused rollout is resumed by it; a rolled-back one must be resumed first."},
		{"rollback", "Roll a rollout back: the route enforces its current set alone",
			"Roll the rollout back: the route enforces its current set and the candidate is no longer\nevaluated. 'resume' starts the rollout again from shadow."},
		{"pause", "Hold a rollout at its step: no automatic promotion or rollback",
			"Hold the rollout where it is: its gates are still judged and shown, but the controller\nneither promotes nor rolls it back until it is resumed."},
		{"resume", "Resume a paused rollout, or restart a rolled-back one from shadow",
			"Resume a paused rollout at its step, or start a rolled-back rollout again from shadow."},
	} {
		cmd.AddCommand(newRolloutMoveCmd(v.verb, v.short, v.long))
	}
	return cmd
}

func newRolloutStatusCmd() *cobra.Command {
	var a adminClient
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [ROUTE]",
		Short: "Show every rollout, or one with its transitions (like kubectl argo rollouts get)",
		Long: `Show the rollouts the control plane knows: the route, its current and candidate sets,
the stage and canary share in force, the phase, the requests compared at this step
(both sets evaluated), how many changed decision (allow→deny / deny→allow), the
candidate's evaluation errors, and the gates' verdict.

Phases: Progressing (gates judged every interval), Paused (held; by an operator, or by
the controller while the authorizers' counts cannot be read), RolledBack (the current
set alone), Completed (the candidate is the route's set).`,
		Example: `  meshguard rollout status
  meshguard rollout status orders/read`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/v1/rollouts"
			if len(args) == 1 {
				path += "?route=" + url.QueryEscape(args[0])
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, a.url(path), nil)
			if err != nil {
				return err
			}
			var r controlplane.RolloutReport
			if err := a.do(req, &r); err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			if len(args) == 1 && len(r.Rollouts) == 1 {
				return printRollout(cmd.OutOrStdout(), r.Rollouts[0])
			}
			return printRollouts(cmd.OutOrStdout(), r.Rollouts)
		},
	}
	a.flags(cmd, false)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the raw JSON")
	return cmd
}

func newRolloutMoveCmd(verb, short, long string) *cobra.Command {
	var a adminClient
	var reason string
	cmd := &cobra.Command{
		Use:     verb + " ROUTE",
		Short:   short,
		Long:    long,
		Example: fmt.Sprintf("  meshguard rollout %s orders/read --reason \"%s\"", verb, map[string]string{"promote": "shadow clean for a day", "rollback": "checkout errors", "pause": "incident 4711", "resume": "incident closed"}[verb]),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := a.token()
			if err != nil {
				return err
			}
			body, _ := json.Marshal(controlplane.RolloutCommand{Route: args[0], Actor: a.actor, Reason: reason})
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, a.url("/v1/rollouts/"+verb), bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("content-type", "application/json")
			if tok != "" {
				req.Header.Set("authorization", "Bearer "+tok)
			}
			var r rollout.Rollout
			if err := a.do(req, &r); err != nil {
				return fmt.Errorf("%s %s: %w", verb, args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s at %s (revision %s)\n", r.Route, r.Phase, r.Step(), r.Revision)
			return nil
		},
	}
	a.flags(cmd, true)
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit trail")
	return cmd
}

func printRollouts(w io.Writer, rs []rollout.Rollout) error {
	if len(rs) == 0 {
		fmt.Fprintln(w, "no rollouts (declare one with route.rollout in the mesh file)")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tCURRENT\tCANDIDATE\tSTAGE\t%\tPHASE\tREQUESTS\tCHANGED (A→D/D→A)\tERRORS\tGATES")
	for _, r := range rs {
		st := r.Step()
		pct := "-"
		switch st.Stage {
		case contract.StageCanary:
			pct = contract.FormatPercent(st.Canary)
		case contract.StageEnforce:
			pct = "100"
		}
		reqs, changed, errs := "-", "-", "-"
		if r.Phase != rollout.RolledBack && st.Stage != contract.StageEnforce {
			c := r.Counts
			reqs, changed, errs = fmt.Sprint(c.Requests), fmt.Sprintf("%d/%d", c.AllowToDeny, c.DenyToAllow), fmt.Sprint(c.Errors)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Route, r.Current, r.Candidate, st.Stage, pct, r.Phase, reqs, changed, errs, verdict(r))
	}
	return tw.Flush()
}

func verdict(r rollout.Rollout) string {
	switch {
	case r.Gates == nil:
		return "none (commands only)"
	case r.Verdict.Result == "":
		return "not judged yet"
	case r.Verdict.Reason == "":
		return r.Verdict.Result
	}
	return r.Verdict.Result + ": " + oneLine(r.Verdict.Reason, 60)
}

func printRollout(w io.Writer, r rollout.Rollout) error {
	steps := make([]string, len(r.Plan))
	for i, s := range r.Plan {
		steps[i] = s.String()
		if i == r.Index {
			steps[i] = "[" + steps[i] + "]"
		}
	}
	fmt.Fprintf(w, "Route:      %s (service %s)\n", r.Route, r.Service)
	fmt.Fprintf(w, "Sets:       %s → %s\n", r.Current, r.Candidate)
	fmt.Fprintf(w, "Phase:      %s", r.Phase)
	if r.PausedBy != "" {
		fmt.Fprintf(w, " (by %s)", r.PausedBy)
	}
	fmt.Fprintf(w, "\nSteps:      %s\n", strings.Join(steps, " → "))
	fmt.Fprintf(w, "Revision:   %s, since %s\n", r.Revision, r.Since.Format(time.RFC3339))
	c := r.Counts
	fmt.Fprintf(w, "Requests:   %d compared: %d same, %d allow→deny, %d deny→allow, %d errors; candidate decided %d\n",
		c.Requests, c.Same, c.AllowToDeny, c.DenyToAllow, c.Errors, c.CandidateEnforced)
	fmt.Fprintf(w, "Gates:      %s\n", verdict(r))
	if g := r.Gates; g != nil {
		fmt.Fprintf(w, "            minRequests %d, maxAllowToDeny %s, maxDenyToAllow %s, maxErrors %d, minDwell %s\n",
			g.MinRequests, orUnset(string(g.MaxAllowToDeny)), orUnset(string(g.MaxDenyToAllow)), g.MaxErrors, g.MinDwell)
	}
	if len(r.Transitions) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nTransitions:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  TIME\tFROM\tTO\tBY\tREASON")
	for _, t := range r.Transitions {
		from := t.From
		if from == "" {
			from = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", t.Time.Format(time.RFC3339), from, t.To, t.By, oneLine(t.Reason, 80))
	}
	return tw.Flush()
}

func orUnset(s string) string {
	if s == "" {
		return "unset"
	}
	return s + "%"
}
