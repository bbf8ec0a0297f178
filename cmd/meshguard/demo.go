package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshguard/meshguard/internal/demoidp"
)

// Quickstart demo issuer settings; they match examples/quickstart/authz.yaml.
const (
	demoIssuer   = "https://idp.meshguard.example"
	demoAudience = "meshguard-demo"
	demoKeyPath  = "examples/quickstart/demo-issuer.jwk"
)

func newDemoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Helpers for the quickstart: mint demo tokens, make demo issuer keys",
	}
	var (
		key, issuer, sub string
		aud, roles       []string
		ttl              time.Duration
	)
	token := &cobra.Command{
		Use:   "token --sub NAME [--roles R1,R2]",
		Short: "Mint a JWT from the quickstart's demo issuer",
		Long: `Mint a signed JWT with the demo issuer's private key. The quickstart authorizer
trusts this issuer, so the token authenticates as User::"<sub>" with a Role
parent per --roles value. The demo key is public: never trust it outside a demo.`,
		Example: `  TOKEN=$(meshguard demo token --sub alice --roles admin)
  curl -H "Authorization: Bearer $TOKEN" ...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if sub == "" {
				return fmt.Errorf("--sub is required")
			}
			iss, err := demoidp.Load(key)
			if err != nil {
				return fmt.Errorf("load demo issuer key (run from the repository root or pass --key): %w", err)
			}
			tok, err := iss.Mint(demoidp.Claims(issuer, sub, aud, roles, ttl))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	token.Flags().StringVar(&key, "key", demoKeyPath, "private JWK of the demo issuer")
	token.Flags().StringVar(&issuer, "issuer", demoIssuer, "iss claim")
	token.Flags().StringVar(&sub, "sub", "", "sub claim: the User principal's id")
	token.Flags().StringSliceVar(&aud, "aud", []string{demoAudience}, "aud claim")
	token.Flags().StringSliceVar(&roles, "roles", nil, "roles claim: each value becomes a Role parent")
	token.Flags().DurationVar(&ttl, "ttl", time.Hour, "lifetime of the token")

	var out, kid string
	keygen := &cobra.Command{
		Use:   "keygen --out DIR",
		Short: "Create a demo issuer key pair: DIR/demo-issuer.jwk (private) and DIR/jwks.json",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			iss, err := demoidp.Generate(kid)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			if err := iss.Save(filepath.Join(out, "demo-issuer.jwk")); err != nil {
				return err
			}
			jwks, err := iss.JWKS()
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(out, "jwks.json"), append(jwks, '\n'), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s\n", filepath.Join(out, "demo-issuer.jwk"), filepath.Join(out, "jwks.json"))
			return nil
		},
	}
	keygen.Flags().StringVar(&out, "out", ".", "output directory")
	keygen.Flags().StringVar(&kid, "kid", "demo-1", "key id")
	cmd.AddCommand(token, keygen, newDemoWorkloadCmd())
	return cmd
}
