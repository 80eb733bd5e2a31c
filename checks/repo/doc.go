// Package repo checks rules of the repository as a whole: no tracked file over the size limit of
// .ci/large-files.sh but the SQL dumps; the README as the front door (it starts with the two
// commands, .ci/run runs its test command, it stays short); the links of the README and docs/
// resolve; and docs/configuration.md lists every variable the configuration reads.
package repo
