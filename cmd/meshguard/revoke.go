package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshguard/meshguard/extauthz"
	"github.com/meshguard/meshguard/extauthz/revocation"
)

func newRevokeCmd() *cobra.Command {
	var a adminClient
	var req extauthz.RevokeRequest
	var before, expires string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "revoke --jti ID | --sid ID | --sub SUBJECT [--before TIME]",
		Short: "Revoke a token, a session or a subject's tokens on every authorizer replica",
		Long: `Add a revocation to the authorizers' shared revocation list (Redis): every
replica refuses the token from then on, within a second, without a Redis round
trip per request.

  --jti ID        one token, by its jti claim
  --sid ID        every token of a session, by its sid claim
  --sub SUBJECT   every token of the subject issued before --before (default: now),
                  and its tokens without an iat claim; tokens issued later (a new
                  login) are accepted

A revocation lasts --ttl (default: the authorizer's revocation.default_ttl) or
until --expires; set it to at least the lifetime of the tokens it names. Only
token providers configured with a revocation block check the list.

The command talks to one authorizer's admin listener (--admin), which needs the
admin token (--token-file, or $MESHGUARD_ADMIN_TOKEN) unless it is on loopback.
See docs/operations.md, "Revoking tokens".`,
		Example: `  meshguard revoke --jti 5f1c7a0e --reason "leaked in a support ticket"
  meshguard revoke --sid 8c1d-... --ttl 12h
  meshguard revoke --sub alice                         # log alice out everywhere
  meshguard revoke --sub alice --before 2026-12-06T10:00:00Z --admin authz.mesh:9192 --token-file /run/secrets/admin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if before != "" {
				if req.Before, err = time.Parse(time.RFC3339, before); err != nil {
					return fmt.Errorf("--before: want RFC 3339 (2026-12-06T10:00:00Z): %w", err)
				}
			}
			if expires != "" {
				if req.Expires, err = time.Parse(time.RFC3339, expires); err != nil {
					return fmt.Errorf("--expires: want RFC 3339: %w", err)
				}
			}
			if ttl != 0 {
				req.TTL = ttl.String()
			}
			// Catch a bad request before the round trip (the default TTL
			// stands in for the authorizer's).
			if _, err := req.Entry(time.Now(), time.Hour); err != nil {
				return err
			}
			req.Actor = a.actor
			tok, err := a.token()
			if err != nil {
				return err
			}
			body, _ := json.Marshal(req)
			r, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, a.url("/v1/revocations"), bytes.NewReader(body))
			if err != nil {
				return err
			}
			r.Header.Set("content-type", "application/json")
			if tok != "" {
				r.Header.Set("authorization", "Bearer "+tok)
			}
			var e revocation.Entry
			if err := a.do(r, &e); err != nil {
				return fmt.Errorf("revoke: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s %q until %s", e.Kind, e.Value, e.Expires.Format(time.RFC3339))
			if e.Kind == revocation.KindSubject {
				fmt.Fprintf(cmd.OutOrStdout(), " (tokens issued before %s)", e.Before.Format(time.RFC3339))
			}
			fmt.Fprintln(cmd.OutOrStdout())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.JTI, "jti", "", "revoke the token with this jti")
	f.StringVar(&req.SID, "sid", "", "revoke every token of this session (sid)")
	f.StringVar(&req.Sub, "sub", "", "revoke the subject's tokens issued before --before")
	f.StringVar(&before, "before", "", "with --sub: the cutoff, RFC 3339 (default: now)")
	f.StringVar(&expires, "expires", "", "when the revocation may be forgotten, RFC 3339")
	f.DurationVar(&ttl, "ttl", 0, "how long the revocation lasts (default: the authorizer's revocation.default_ttl)")
	f.StringVar(&req.Reason, "reason", "", "why, for the authorizer's log")
	cmd.Flags().StringVar(&a.addr, "admin", "127.0.0.1:9192", "authorizer admin address (host:port or URL)")
	cmd.Flags().StringVar(&a.tokenFile, "token-file", "", "file holding the authorizer's admin token (default: $MESHGUARD_ADMIN_TOKEN)")
	cmd.Flags().StringVar(&a.actor, "actor", os.Getenv("USER"), "who is asking, for the log")
	return cmd
}
