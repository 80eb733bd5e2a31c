// Package container tests the container files at the repository root: the Dockerfile, the
// entrypoint script and compose.yaml. No Docker engine runs where the tests run, so the tests
// build the binary the way the Dockerfile does, run entrypoint.sh with the image's environment
// against a throwaway PostgreSQL, and check the files' wiring statically.
package container
