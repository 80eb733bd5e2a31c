// Package openapi checks api/openapi.yaml against the service: it builds and runs `rates serve`
// on a throwaway PostgreSQL, sends real requests and validates every answer (status, media
// type, body) against the document. It lives in the checks module so that the service's module
// does not carry a JSON Schema validator.
package openapi
