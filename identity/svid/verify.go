// Package svid validates X.509-SVIDs strictly, per the SPIFFE X.509-SVID
// specification, including the checks go-spiffe's x509svid.Verify leaves out
// (a non-root path, digitalSignature, extended key usage).
package svid

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Error lists every reason a chain is not a valid X.509-SVID.
type Error struct {
	Reasons []string
}

func (e *Error) Error() string { return "invalid X.509-SVID: " + strings.Join(e.Reasons, "; ") }

// LeafProblems checks the leaf certificate's form (SPIFFE X.509-SVID §2, §4):
// exactly one URI SAN holding a SPIFFE ID with a non-root path; not a CA;
// digitalSignature set and neither keyCertSign nor cRLSign; an extended key
// usage, when present, including both serverAuth and clientAuth.
func LeafProblems(leaf *x509.Certificate) (spiffeid.ID, []string) {
	var id spiffeid.ID
	var problems []string
	switch n := len(leaf.URIs); {
	case n == 0:
		problems = append(problems, "no URI SAN")
	case n > 1:
		problems = append(problems, fmt.Sprintf("%d URI SANs; exactly one is allowed", n))
	default:
		u := leaf.URIs[0]
		parsed, err := spiffeid.FromURI(u)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("URI SAN %q is not a SPIFFE ID: %v", u.String(), err))
		case parsed.Path() == "":
			problems = append(problems, fmt.Sprintf("SPIFFE ID %s has no path; a workload SVID needs one", parsed))
		default:
			id = parsed
		}
	}
	if leaf.IsCA {
		problems = append(problems, "leaf has the CA flag set")
	}
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		problems = append(problems, "leaf lacks the digitalSignature key usage")
	}
	if leaf.KeyUsage&x509.KeyUsageCertSign != 0 {
		problems = append(problems, "leaf has the keyCertSign key usage")
	}
	if leaf.KeyUsage&x509.KeyUsageCRLSign != 0 {
		problems = append(problems, "leaf has the cRLSign key usage")
	}
	if len(leaf.ExtKeyUsage) > 0 || len(leaf.UnknownExtKeyUsage) > 0 {
		if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) &&
			(!slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth)) {
			problems = append(problems, "extended key usage present without both serverAuth and clientAuth")
		}
	}
	return id, problems
}

// Verify validates chain (leaf first) against the bundles: the leaf's form
// (LeafProblems), each intermediate being a CA allowed to sign certificates,
// and path validation to the bundle of the leaf's trust domain at now.
// It returns the SPIFFE ID, or an *Error listing every problem found.
func Verify(chain []*x509.Certificate, bundles x509bundle.Source, now time.Time) (spiffeid.ID, error) {
	if len(chain) == 0 {
		return spiffeid.ID{}, &Error{Reasons: []string{"empty certificate chain"}}
	}
	id, problems := LeafProblems(chain[0])
	for i, c := range chain[1:] {
		if !c.IsCA || c.KeyUsage&x509.KeyUsageCertSign == 0 {
			problems = append(problems, fmt.Sprintf("intermediate %d is not a signing CA (CA flag and keyCertSign required)", i+1))
		}
	}
	if len(problems) > 0 {
		return id, &Error{Reasons: problems}
	}
	if _, _, err := x509svid.Verify(chain, bundles, x509svid.WithTime(now)); err != nil {
		return id, &Error{Reasons: []string{strings.TrimPrefix(err.Error(), "x509svid: ")}}
	}
	return id, nil
}

// Reasons returns the reasons of an *Error, or the error text.
func Reasons(err error) []string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reasons
	}
	if err != nil {
		return []string{err.Error()}
	}
	return nil
}
