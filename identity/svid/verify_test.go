package svid

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

var (
	td  = spiffeid.RequireTrustDomainFromString("example.org")
	now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
)

type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T, parent *ca, mut func(*x509.Certificate)) *ca {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		URIs: []*url.URL{td.ID().URL()},
	}
	if mut != nil {
		mut(tmpl)
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, key.Public(), signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &ca{cert: c, key: key}
}

func leafTemplate(uris ...string) *x509.Certificate {
	var us []*url.URL
	for _, s := range uris {
		u, _ := url.Parse(s)
		us = append(us, u)
	}
	return &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		NotBefore:    now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		URIs:                  us,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
}

func (c *ca) sign(t *testing.T, tmpl *x509.Certificate) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestVerifyCorpus(t *testing.T) {
	root := newCA(t, nil, nil)
	other := newCA(t, nil, nil)
	inter := newCA(t, root, nil)
	badInter := newCA(t, root, func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature })
	bundles := x509bundle.NewSet(x509bundle.FromX509Authorities(td, []*x509.Certificate{root.cert}))
	const good = "spiffe://example.org/ns/demo/sa/orders"

	mut := func(f func(*x509.Certificate)) *x509.Certificate {
		c := leafTemplate(good)
		f(c)
		return c
	}
	cases := []struct {
		name  string
		chain func() []*x509.Certificate
		want  string // "" = valid
	}{
		{"valid leaf", func() []*x509.Certificate { return []*x509.Certificate{root.sign(t, leafTemplate(good))} }, ""},
		{"valid through an intermediate", func() []*x509.Certificate {
			return []*x509.Certificate{inter.sign(t, leafTemplate(good)), inter.cert}
		}, ""},
		{"no EKU at all is allowed", func() []*x509.Certificate {
			return []*x509.Certificate{root.sign(t, mut(func(c *x509.Certificate) { c.ExtKeyUsage = nil }))}
		}, ""},
		{"no URI SAN", func() []*x509.Certificate { return []*x509.Certificate{root.sign(t, leafTemplate())} }, "no URI SAN"},
		{"two URI SANs", func() []*x509.Certificate {
			return []*x509.Certificate{root.sign(t, leafTemplate(good, "spiffe://example.org/admin"))}
		}, "exactly one"},
		{"https scheme", func() []*x509.Certificate {
			return []*x509.Certificate{root.sign(t, leafTemplate("https://example.org/ns/demo"))}
		}, "not a SPIFFE ID"},
		{"root path", func() []*x509.Certificate {
			return []*x509.Certificate{root.sign(t, leafTemplate("spiffe://example.org"))}
		}, "has no path"},
		{"upper-case trust domain", func() []*x509.Certificate {
			return []*x509.Certificate{root.sign(t, leafTemplate("spiffe://Example.org/ns/a"))}
		}, "not a SPIFFE ID"},
		{"dot-dot segment", func() []*x509.Certificate {
			return []*x509.Certificate{root.sign(t, leafTemplate("spiffe://example.org/ns/../admin"))}
		}, "not a SPIFFE ID"},
		{"leaf is a CA", func() []*x509.Certificate {
			return []*x509.Certificate{root.sign(t, mut(func(c *x509.Certificate) { c.IsCA = true; c.KeyUsage |= x509.KeyUsageCertSign }))}
		}, "CA flag"},
		{"leaf with keyCertSign", func() []*x509.Certificate {
			return []*x509.Certificate{root.sign(t, mut(func(c *x509.Certificate) { c.KeyUsage |= x509.KeyUsageCertSign }))}
		}, "keyCertSign"},
		{"leaf with cRLSign", func() []*x509.Certificate {
			return []*x509.Certificate{root.sign(t, mut(func(c *x509.Certificate) { c.KeyUsage |= x509.KeyUsageCRLSign }))}
		}, "cRLSign"},
		{"no digitalSignature", func() []*x509.Certificate {
			return []*x509.Certificate{root.sign(t, mut(func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment }))}
		}, "digitalSignature"},
		{"EKU serverAuth only", func() []*x509.Certificate {
			return []*x509.Certificate{root.sign(t, mut(func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }))}
		}, "serverAuth and clientAuth"},
		{"EKU codeSigning", func() []*x509.Certificate {
			return []*x509.Certificate{root.sign(t, mut(func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning} }))}
		}, "serverAuth and clientAuth"},
		{"signed by an untrusted CA", func() []*x509.Certificate { return []*x509.Certificate{other.sign(t, leafTemplate(good))} }, "could not verify"},
		{"expired", func() []*x509.Certificate {
			return []*x509.Certificate{root.sign(t, mut(func(c *x509.Certificate) { c.NotAfter = now.Add(-time.Second) }))}
		}, "could not verify"},
		{"not yet valid", func() []*x509.Certificate {
			return []*x509.Certificate{root.sign(t, mut(func(c *x509.Certificate) { c.NotBefore = now.Add(time.Hour) }))}
		}, "could not verify"},
		{"foreign trust domain without a bundle", func() []*x509.Certificate {
			return []*x509.Certificate{root.sign(t, leafTemplate("spiffe://evil.org/ns/demo/sa/orders"))}
		}, "bundle"},
		{"intermediate without keyCertSign", func() []*x509.Certificate {
			return []*x509.Certificate{badInter.sign(t, leafTemplate(good)), badInter.cert}
		}, "not a signing CA"},
		{"empty chain", func() []*x509.Certificate { return nil }, "empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := Verify(tc.chain(), bundles, now)
			if tc.want == "" {
				if err != nil || id.String() != good {
					t.Fatalf("valid SVID refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted as %s; want refusal mentioning %q", id, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want mention of %q", err, tc.want)
			}
		})
	}
}

func TestAllProblemsAreReported(t *testing.T) {
	root := newCA(t, nil, nil)
	c := leafTemplate("spiffe://example.org")
	c.IsCA = true
	c.KeyUsage = x509.KeyUsageCertSign
	_, err := Verify([]*x509.Certificate{root.sign(t, c)}, x509bundle.NewSet(), now)
	if got := len(Reasons(err)); got < 3 {
		t.Fatalf("reasons = %v; want every problem listed", Reasons(err))
	}
}
