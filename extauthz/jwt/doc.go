// Package jwt verifies end-user JSON Web Tokens for the authorizer and maps
// their claims to Cedar values.
//
// Signature verification is go-jose's; this package decides which key and
// which algorithm may be used. The algorithm is pinned by the key: a JWK's
// own "alg" if present, otherwise the algorithms its key type allows. "none",
// HMAC and keys named by the token (jku, x5u, an embedded jwk) are never
// accepted, and any "crit" header is rejected because meshguard implements
// no JWS extensions.
package jwt
