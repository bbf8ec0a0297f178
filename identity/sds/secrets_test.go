package sds

import (
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// A validation secret keeps one bundle per trust domain, in order, and
// refuses a bundle without a trust domain name rather than emitting a
// validator Envoy would reject.
func TestValidationSecret(t *testing.T) {
	s, err := ValidationSecret(SecretAll, []TrustDomainBundle{{"a.example", []byte("A")}, {"b.example", []byte("B")}})
	if err != nil {
		t.Fatal(err)
	}
	var v tlsv3.SPIFFECertValidatorConfig
	if err := s.GetValidationContext().GetCustomValidatorConfig().GetTypedConfig().UnmarshalTo(&v); err != nil {
		t.Fatal(err)
	}
	tds := v.GetTrustDomains()
	if s.GetName() != SecretAll || len(tds) != 2 || tds[0].GetName() != "a.example" || string(tds[1].GetTrustBundle().GetInlineBytes()) != "B" {
		t.Fatalf("secret = %v", s)
	}
	if _, err := ValidationSecret(SecretBundle, []TrustDomainBundle{{"", []byte("A")}}); err == nil {
		t.Fatal("a bundle without a trust domain name was accepted")
	}
}
