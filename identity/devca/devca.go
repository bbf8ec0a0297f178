// Package devca is the embedded development CA: one ECDSA P-256 key per trust
// domain, kept on disk (0600), issuing short-lived X.509-SVIDs that follow
// the SPIFFE X.509-SVID specification (one URI SAN, leaf not a CA,
// digitalSignature key usage, serverAuth+clientAuth). It lets `meshguard up`
// give every workload mTLS with nothing installed; production uses SPIRE.
package devca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// CA validity and default SVID lifetime.
const (
	CALifetime      = 365 * 24 * time.Hour
	DefaultSVIDTTL  = time.Hour
	certFile        = "ca.crt"
	keyFile         = "ca.key"
	backdateForSkew = time.Minute
)

// CA issues X.509-SVIDs for one trust domain.
type CA struct {
	td   spiffeid.TrustDomain
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
	now  func() time.Time
}

// SVID is an issued identity: leaf certificate and key, PEM-encoded.
type SVID struct {
	ID       spiffeid.ID
	CertPEM  []byte
	KeyPEM   []byte
	NotAfter time.Time
	Cert     *x509.Certificate
	Key      crypto.Signer
}

// LoadOrCreate loads the CA for td from dir, creating it (key 0600) on first
// use. A CA of another trust domain in dir is an error.
func LoadOrCreate(dir string, td spiffeid.TrustDomain) (*CA, error) {
	ca, err := load(dir, td)
	if err == nil {
		return ca, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	ca, err = New(td)
	if err != nil {
		return nil, err
	}
	if err := ca.save(dir); err != nil {
		return nil, err
	}
	return ca, nil
}

// New creates an in-memory CA (tests, ephemeral runs).
func New(td spiffeid.TrustDomain) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"meshguard dev CA"}, CommonName: td.Name()},
		URIs:                  []*url.URL{td.ID().URL()},
		NotBefore:             now.Add(-backdateForSkew),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		// The CA can only vouch for its own trust domain.
		PermittedURIDomains:         []string{td.Name()},
		PermittedDNSDomainsCritical: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{td: td, cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), now: time.Now}, nil
}

func load(dir string, td spiffeid.TrustDomain) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, certFile))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, keyFile))
	if err != nil {
		return nil, err
	}
	ca, err := Parse(certPEM, keyPEM, td)
	if err != nil {
		return nil, fmt.Errorf("dev CA in %s: %w", dir, err)
	}
	return ca, nil
}

// Parse reads a CA of td from its PEM certificate and PKCS #8 key (as
// KeyPEM writes it), refusing one of another trust domain or expired.
func Parse(certPEM, keyPEM []byte, td spiffeid.TrustDomain) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, errors.New("not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("the key cannot sign")
	}
	if len(cert.URIs) != 1 || cert.URIs[0].Host != td.Name() {
		return nil, fmt.Errorf("it belongs to another trust domain than %q", td.Name())
	}
	if time.Now().After(cert.NotAfter) {
		return nil, fmt.Errorf("it expired on %s; remove it to create a new one", cert.NotAfter.Format(time.DateOnly))
	}
	return &CA{td: td, cert: cert, key: signer, pem: certPEM, now: time.Now}, nil
}

// KeyPEM is the CA's private key, PKCS #8 in PEM: a secret.
func (ca *CA) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func (ca *CA) save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	key, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, keyFile), key, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, certFile), ca.pem, 0o644)
}

// TrustDomain is the CA's trust domain.
func (ca *CA) TrustDomain() spiffeid.TrustDomain { return ca.td }

// BundlePEM is the trust bundle: the CA certificate.
func (ca *CA) BundlePEM() []byte { return ca.pem }

// Certificate is the CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Issue signs a new X.509-SVID for id, valid for ttl (capped by the CA's own expiry).
func (ca *CA) Issue(id spiffeid.ID, ttl time.Duration) (*SVID, error) {
	if !id.MemberOf(ca.td) {
		return nil, fmt.Errorf("%s is not in trust domain %s", id, ca.td)
	}
	if id.Path() == "" {
		return nil, fmt.Errorf("%s: an X.509-SVID needs a non-root path", id)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := ca.now()
	notAfter := now.Add(ttl)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"SPIFFE"}},
		URIs:                  []*url.URL{id.URL()},
		NotBefore:             now.Add(-backdateForSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("issue SVID for %s: %w", id, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &SVID{
		ID:       id,
		CertPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}),
		NotAfter: notAfter,
		Cert:     cert,
		Key:      key,
	}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
