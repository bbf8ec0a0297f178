package identity

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/federation"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/meshguard/meshguard/identity/devca"
	"github.com/meshguard/meshguard/identity/svid"
)

func TestFederatedBundlesFromFileAndEndpoint(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ours, _ := devca.New(td)
	partnerTD := spiffeid.RequireTrustDomainFromString("partner.test")
	partner, _ := devca.New(partnerTD)
	remoteTD := spiffeid.RequireTrustDomainFromString("remote.test")
	remote, _ := devca.New(remoteTD)

	// partner.test by file
	dir := t.TempDir()
	file := filepath.Join(dir, "partner.pem")
	if err := os.WriteFile(file, partner.BundlePEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	// remote.test by an https_spiffe bundle endpoint that our CA vouches for.
	endpointID := spiffeid.RequireFromString("spiffe://meshguard.test/bundle-endpoint")
	epSrc, _ := NewDevCASource(ours, endpointID, time.Hour)
	remoteBundle := spiffebundle.FromX509Authorities(remoteTD, []*x509.Certificate{remote.Certificate()})
	handler, err := federation.NewHandler(remoteTD, remoteBundle)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := tls.Listen("tcp", "127.0.0.1:0", tlsconfig.TLSServerConfig(epSrc))
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: handler}
	go func() { _ = hs.Serve(lis) }()
	defer hs.Close()
	url := "https://" + lis.Addr().String()

	b, err := NewBundles([]Federated{
		{TrustDomain: "partner.test", BundleFile: file},
		{TrustDomain: "remote.test", BundleEndpointURL: url, EndpointSPIFFEID: endpointID.String()},
	}, x509bundle.FromX509Authorities(td, []*x509.Certificate{ours.Certificate()}), log)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A partner and a remote workload now verify; an unknown domain does not.
	for _, c := range []struct {
		ca *devca.CA
		id string
		ok bool
	}{
		{partner, "spiffe://partner.test/ns/a/sa/b", true},
		{remote, "spiffe://remote.test/ns/a/sa/b", true},
	} {
		s, _ := c.ca.Issue(spiffeid.RequireFromString(c.id), time.Hour)
		if _, err := svid.Verify([]*x509.Certificate{s.Cert}, b, time.Now()); (err == nil) != c.ok {
			t.Fatalf("%s: %v", c.id, err)
		}
	}
	stranger, _ := devca.New(spiffeid.RequireTrustDomainFromString("stranger.test"))
	s, _ := stranger.Issue(spiffeid.RequireFromString("spiffe://stranger.test/x"), time.Hour)
	if _, err := svid.Verify([]*x509.Certificate{s.Cert}, b, time.Now()); err == nil {
		t.Fatal("a non-federated trust domain verified")
	}

	// An endpoint presenting the wrong SPIFFE ID is not trusted.
	bad, _ := NewBundles([]Federated{{TrustDomain: "remote.test", BundleEndpointURL: url,
		EndpointSPIFFEID: "spiffe://meshguard.test/someone-else"}}, x509bundle.FromX509Authorities(td, []*x509.Certificate{ours.Certificate()}), log)
	if err := bad.Refresh(context.Background()); err == nil {
		t.Fatal("bundle accepted from an endpoint with the wrong identity")
	}
}
