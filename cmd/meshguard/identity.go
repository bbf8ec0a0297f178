package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/meshguard/meshguard/identity/devca"
	"github.com/meshguard/meshguard/identity/svid"
)

const defaultCADir = ".meshguard/ca"

func newIdentityCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "identity",
		Short: "SPIFFE identities: the embedded dev CA, issuing SVID files, inspecting certificates",
		Long: `Work with SPIFFE X.509-SVIDs.

The embedded dev CA gives every workload mTLS with nothing installed: one ECDSA
P-256 key per trust domain (kept with mode 0600, created on first use) issuing
short-lived SVIDs. Production uses SPIRE (see docs/identity.md).`,
	}
	var caDir, trustDomain string
	ca := &cobra.Command{Use: "ca", Short: "Manage the embedded dev CA"}
	caInit := &cobra.Command{
		Use:     "init --trust-domain TD",
		Short:   "Create the dev CA for a trust domain (or show the existing one)",
		Example: `  meshguard identity ca init --trust-domain meshguard.local --dir .meshguard/ca`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			td, err := spiffeid.TrustDomainFromString(trustDomain)
			if err != nil {
				return fmt.Errorf("--trust-domain: %w", err)
			}
			c, err := devca.LoadOrCreate(caDir, td)
			if err != nil {
				return err
			}
			cert := c.Certificate()
			sum := sha256.Sum256(cert.Raw)
			fmt.Fprintf(cmd.OutOrStdout(), "dev CA for %s in %s\n  SHA-256 %s\n  valid until %s\n",
				td, caDir, hex.EncodeToString(sum[:]), cert.NotAfter.UTC().Format(time.RFC3339))
			return nil
		},
	}
	caInit.Flags().StringVar(&trustDomain, "trust-domain", "", "trust domain, e.g. meshguard.local")
	caInit.Flags().StringVar(&caDir, "dir", defaultCADir, "CA directory")
	_ = caInit.MarkFlagRequired("trust-domain")
	ca.AddCommand(caInit)

	var id, out string
	var ttl time.Duration
	issue := &cobra.Command{
		Use:   "issue --spiffe-id ID --out DIR",
		Short: "Issue an X.509-SVID into DIR: cert.pem, key.pem (0600), bundle.pem",
		Long: `Issue an X.509-SVID from the dev CA of the ID's trust domain (created if
missing) and write it as files, for tools, tests and gRPC-Go's file_watcher
certificate provider (proxyless workloads).`,
		Example: `  meshguard identity issue --spiffe-id spiffe://meshguard.local/ns/demo/sa/frontend --out svid/`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sid, err := spiffeid.FromString(id)
			if err != nil {
				return fmt.Errorf("--spiffe-id: %w", err)
			}
			c, err := devca.LoadOrCreate(caDir, sid.TrustDomain())
			if err != nil {
				return err
			}
			s, err := c.Issue(sid, ttl)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			for _, f := range []struct {
				name string
				data []byte
				mode os.FileMode
			}{{"cert.pem", s.CertPEM, 0o644}, {"key.pem", s.KeyPEM, 0o600}, {"bundle.pem", c.BundlePEM(), 0o644}} {
				if err := os.WriteFile(filepath.Join(out, f.name), f.data, f.mode); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "issued %s, valid until %s, in %s\n", sid, s.NotAfter.UTC().Format(time.RFC3339), out)
			return nil
		},
	}
	issue.Flags().StringVar(&id, "spiffe-id", "", "SPIFFE ID (spiffe://<trust-domain>/<path>)")
	issue.Flags().StringVar(&out, "out", "", "output directory")
	issue.Flags().StringVar(&caDir, "ca-dir", defaultCADir, "dev CA directory")
	issue.Flags().DurationVar(&ttl, "ttl", devca.DefaultSVIDTTL, "lifetime")
	_ = issue.MarkFlagRequired("spiffe-id")
	_ = issue.MarkFlagRequired("out")

	var bundleFile string
	inspect := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Show a certificate's SPIFFE ID and expiry, and whether it is a valid X.509-SVID",
		Long: `Print the SPIFFE ID, validity and key of the first certificate in FILE (PEM),
and a verdict: every rule of the SPIFFE X.509-SVID specification is checked,
including those go-spiffe leaves out (non-root path, digitalSignature,
serverAuth+clientAuth). With --bundle the chain is also verified against the
trust bundle; exit status 1 when invalid.`,
		Example: `  meshguard identity inspect svid/cert.pem --bundle svid/bundle.pem`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return inspectSVID(cmd.OutOrStdout(), args[0], bundleFile)
		},
	}
	inspect.Flags().StringVar(&bundleFile, "bundle", "", "trust bundle (PEM) to verify the chain against")
	cmd.AddCommand(ca, issue, inspect)
	return cmd
}

func inspectSVID(w io.Writer, file, bundleFile string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var chain []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return fmt.Errorf("%s: no PEM certificate", file)
	}
	leaf := chain[0]
	uri := "(none)"
	if len(leaf.URIs) > 0 {
		uri = leaf.URIs[0].String()
	}
	fmt.Fprintf(w, "SPIFFE ID:   %s\nserial:      %s\nnot before:  %s\nnot after:   %s (%s)\nkey:         %s\nchain:       %d certificate(s)\n",
		uri, leaf.SerialNumber, leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339),
		expiresIn(leaf.NotAfter), keyType(leaf), len(chain))
	var reasons []string
	if bundleFile != "" {
		id, probs := svid.LeafProblems(leaf)
		td := id.TrustDomain()
		if id.IsZero() && len(leaf.URIs) == 1 {
			if parsed, err := spiffeid.TrustDomainFromURI(leaf.URIs[0]); err == nil {
				td = parsed
			}
		}
		if td.IsZero() {
			reasons = probs
		} else {
			b, err := x509bundle.Load(td, bundleFile)
			if err != nil {
				return fmt.Errorf("--bundle: %w", err)
			}
			_, err = svid.Verify(chain, x509bundle.NewSet(b), time.Now())
			reasons = svid.Reasons(err)
		}
	} else {
		_, reasons = svid.LeafProblems(leaf)
		if time.Now().After(leaf.NotAfter) {
			reasons = append(reasons, "expired")
		}
	}
	if len(reasons) == 0 {
		if bundleFile == "" {
			fmt.Fprintln(w, "verdict:     VALID form (chain not verified: pass --bundle)")
		} else {
			fmt.Fprintln(w, "verdict:     VALID")
		}
		return nil
	}
	fmt.Fprintln(w, "verdict:     INVALID")
	for _, r := range reasons {
		fmt.Fprintf(w, "  - %s\n", r)
	}
	return fmt.Errorf("%s is not a valid X.509-SVID", file)
}

func expiresIn(t time.Time) string {
	d := time.Until(t).Round(time.Second)
	if d < 0 {
		return "expired " + (-d).String() + " ago"
	}
	return "in " + d.String()
}

func keyType(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	}
	return "unknown"
}
