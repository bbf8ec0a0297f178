// Package policy loads Cedar policy sets from a directory and evaluates
// requests against one set at a time.
//
// Layout: every *.cedar file directly under the root forms the set "default";
// every subdirectory <name>/ (recursively) forms the set <name>. A request
// names its set (the meshguard.policy context extension), so policies in
// other sets cost it nothing.
//
// Policy IDs are "<set>/<file>#<@id or index>". cedar-go numbers policies
// "policy0…" per parse and ignores @id; meshguard builds its own IDs so that
// decision logs name a policy an operator can find, and a duplicate @id
// within a set is a load error rather than a silent overwrite.
package policy
