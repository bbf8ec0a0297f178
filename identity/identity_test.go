package identity

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/meshguard/meshguard/identity/devca"
	"github.com/meshguard/meshguard/identity/svid"
)

var td = spiffeid.RequireTrustDomainFromString("meshguard.test")

func TestDevCAIssuesSpecCompliantSVIDs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca, err := devca.LoadOrCreate(dir, td)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "ca.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("CA key mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	again, err := devca.LoadOrCreate(dir, td)
	if err != nil || !again.Certificate().Equal(ca.Certificate()) {
		t.Fatalf("second start did not reuse the CA: %v", err)
	}
	if _, err := devca.LoadOrCreate(dir, spiffeid.RequireTrustDomainFromString("other.test")); err == nil {
		t.Fatal("a CA of another trust domain was accepted")
	}
	id := spiffeid.RequireFromString("spiffe://meshguard.test/ns/demo/sa/orders")
	s, err := ca.Issue(id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewDevCASource(ca, id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got, err := svid.Verify([]*x509.Certificate{s.Cert}, src, time.Now())
	if err != nil || got != id {
		t.Fatalf("dev CA SVID fails strict validation: %v", err)
	}
	if _, err := ca.Issue(spiffeid.RequireFromString("spiffe://other.test/x"), time.Hour); err == nil {
		t.Fatal("issued an SVID outside the CA's trust domain")
	}
	if _, err := ca.Issue(td.ID(), time.Hour); err == nil {
		t.Fatal("issued an SVID with a root path")
	}
}

func TestDevCASourceRotatesAtHalfLife(t *testing.T) {
	ca, err := devca.New(td)
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewDevCASource(ca, spiffeid.RequireFromString("spiffe://meshguard.test/cp"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := src.GetX509SVID()
	same, _ := src.GetX509SVID()
	if first != same {
		t.Fatal("re-issued before half-life")
	}
	src.now = func() time.Time { return time.Now().Add(31 * time.Minute) }
	next, _ := src.GetX509SVID()
	if next == first || next.Certificates[0].SerialNumber.Cmp(first.Certificates[0].SerialNumber) == 0 {
		t.Fatal("not re-issued after half-life")
	}
}

func TestFileSource(t *testing.T) {
	ca, _ := devca.New(td)
	dir := t.TempDir()
	s, err := ca.Issue(spiffeid.RequireFromString("spiffe://meshguard.test/ns/a/sa/b"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"cert.pem": s.CertPEM, "key.pem": s.KeyPEM, "bundle.pem": ca.BundlePEM()} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fs, err := NewFileSource(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "bundle.pem"))
	if err != nil {
		t.Fatal(err)
	}
	sv, err := fs.GetX509SVID()
	if err != nil || sv.ID.String() != "spiffe://meshguard.test/ns/a/sa/b" {
		t.Fatalf("file SVID: %v %v", sv, err)
	}
	if _, err := NewFileSource(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "nope.pem"), filepath.Join(dir, "bundle.pem")); err == nil {
		t.Fatal("missing key accepted")
	}
}

// handshakeResult is the outcome of one mTLS exchange over loopback.
type handshakeResult struct {
	client, server error
	curve          tls.CurveID // the negotiated key exchange group
}

// handshake runs an mTLS exchange over loopback.
func handshake(t *testing.T, server, client *tls.Config) handshakeResult {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		err = c.(*tls.Conn).Handshake()
		if err == nil {
			_, err = io.WriteString(c, "ok")
		}
		done <- err
	}()
	var curve tls.CurveID
	c, err := tls.Dial("tcp", l.Addr().String(), client)
	if err == nil {
		curve = c.ConnectionState().CurveID
		buf := make([]byte, 2)
		_, err = io.ReadFull(c, buf)
		c.Close()
	}
	return handshakeResult{client: err, server: <-done, curve: curve}
}

func TestMutualTLSWithSPIFFEPolicy(t *testing.T) {
	ca, _ := devca.New(td)
	srvID := spiffeid.RequireFromString("spiffe://meshguard.test/meshguard/authz")
	cliID := spiffeid.RequireFromString("spiffe://meshguard.test/ns/demo/sa/orders")
	srv, _ := NewDevCASource(ca, srvID, time.Hour)
	cli, _ := NewDevCASource(ca, cliID, time.Hour)

	r := handshake(t,
		ServerTLS(srv, srv, Policy{TrustDomains: []string{"meshguard.test"}}),
		ClientTLS(cli, cli, Policy{IDs: []string{srvID.String()}}))
	if r.client != nil || r.server != nil {
		t.Fatalf("allowed peers failed: client %v, server %v", r.client, r.server)
	}
	if r.curve != tls.X25519MLKEM768 {
		t.Fatalf("key exchange %v, want the hybrid post-quantum X25519MLKEM768", r.curve)
	}

	// The server only admits another workload.
	serr := handshake(t,
		ServerTLS(srv, srv, Policy{IDs: []string{"spiffe://meshguard.test/ns/demo/sa/payments"}}),
		ClientTLS(cli, cli, Policy{IDs: []string{srvID.String()}})).server
	if serr == nil || !strings.Contains(serr.Error(), "not allowed") {
		t.Fatalf("server accepted a client outside its policy: %v", serr)
	}

	// The client expects another server identity.
	if handshake(t,
		ServerTLS(srv, srv, Policy{TrustDomains: []string{"meshguard.test"}}),
		ClientTLS(cli, cli, Policy{IDs: []string{"spiffe://meshguard.test/meshguard/controlplane"}})).client == nil {
		t.Fatal("client accepted the wrong server identity")
	}

	// A client from another CA (same trust domain name) is refused.
	rogueCA, _ := devca.New(td)
	rogue, _ := NewDevCASource(rogueCA, cliID, time.Hour)
	if handshake(t,
		ServerTLS(srv, srv, Policy{TrustDomains: []string{"meshguard.test"}}),
		ClientTLS(rogue, srv, Policy{IDs: []string{srvID.String()}})).server == nil {
		t.Fatal("server accepted a client certificate from an untrusted CA")
	}
}

func TestPolicyValidation(t *testing.T) {
	if (Policy{}).Validate() == nil {
		t.Fatal("an empty policy must be refused (it would allow no one, silently)")
	}
	if (Policy{IDs: []string{"spiffe://BAD/x"}}).Validate() == nil {
		t.Fatal("a malformed ID was accepted")
	}
	if err := (Policy{TrustDomains: []string{"meshguard.test"}}).Validate(); err != nil {
		t.Fatal(err)
	}
}
