// Command ollama-oracle is an upstream that reads requests the way Ollama does and reports what it read.
//
// It stands in for Ollama behind Tollgate in tests/clients/test_oracle.py: every request that reaches it is
// answered 200 with a JSON report (which handler ran, the URL.Path gin routed on, every model reading) and
// appended as one JSON line to the file given by -log, so a test can list everything that got through.
//
// What is modelled, taken from Ollama's own sources (server/routes.go, server/cloud_proxy.go,
// server/model_resolver.go, internal/modelref/modelref.go, middleware/openai.go, middleware/anthropic.go,
// api/types.go; read at a 2026 snapshot that builds with Go 1.26 and gin 1.10):
//
// Serving and path decoding
//   - Ollama registers its gin engine on http.DefaultServeMux under "/" and serves with Handler nil, so the Go
//     ServeMux runs first. Since Go 1.22 it cleans the *escaped* path (r.URL.EscapedPath()) with path.Clean
//     rules (keeping a trailing slash) and answers 301 to the cleaned path when it differs: "//", "/./" and "/../"
//     in the raw target are redirected, never routed. "%2F", "%2e" and other escapes are not cleaned there.
//     This oracle is built with Go 1.19, whose ServeMux cleaned the decoded path instead, so the 1.22+ rule is
//     written out in muxFront below and the engine is served directly.
//   - gin then routes on r.URL.Path, the percent-decoded path (UseRawPath false, UnescapePathValues true,
//     RedirectTrailingSlash true, RedirectFixedPath false, RemoveExtraSlash false: gin's defaults, which Ollama
//     keeps). So "POST /api%2Fpull" and "POST /%61pi/pull" run the pull handler, and an absolute-form target
//     routes on its path alone. Routing is case-sensitive. A trailing-slash variant of a route is answered with a
//     redirect (301 for GET, 307 otherwise). HandleMethodNotAllowed is on: a known path with another method
//     gets 405.
//   - Middleware order: gin.Default() (logger, recovery), then CORS, then the allowed-hosts check, then the
//     per-route chain. The CORS and host checks are not modelled (Tollgate sends Host 127.0.0.1:PORT and strips
//     Origin); the report carries the Host and Origin seen.
//
// Model readings per route (struct readings are gin's ShouldBindJSON: one json.Decoder.Decode of the body into
// the request struct, so keys match case-insensitively, the last duplicate wins, a JSON null leaves the field
// as it was, unknown fields are ignored and bytes after the first JSON value are never looked at):
//   - POST /api/generate, /api/chat, /api/embed, /api/embeddings: field "model" of the request struct. The
//     handler itself sends a cloud model (rule below) to ollama.com.
//   - POST /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses, /v1/messages: first the cloud
//     passthrough middleware reads the whole body with json.Unmarshal into map[string]json.RawMessage and takes
//     the exact-case key "model" (a duplicate key: the last one; trailing bytes after the object: the body is
//     unparseable and no model is taken; a non-string value: none taken), strings.TrimSpace'd. If that names a
//     cloud model the request goes to ollama.com at once. Otherwise the OpenAI/Anthropic middleware decodes the
//     body into its struct (ShouldBindJSON, field "model"), rewrites it as an /api/chat or /api/generate or
//     /api/embed body and the handler acts on that struct reading, again sending a cloud model to ollama.com.
//     The cloud middleware (and the /v1/responses middleware) also decompress a "Content-Encoding: zstd" body
//     before reading it; this oracle cannot, and reports such a body as a reading it could not make.
//   - GET /v1/models/:model: a cloud passthrough middleware reads the path parameter (decoded, TrimSpace'd) and
//     sends a cloud model to ollama.com; otherwise it becomes ShowRequest{Name: param}.
//   - POST /api/show: fields "model", then "name" when model is empty (cmp.Or order); a cloud model's details
//     are fetched from ollama.com.
//   - POST /api/pull, DELETE /api/delete, POST /api/push: "model", then "name" when model is empty.
//     POST /api/create: "model" (and "from"). POST /api/copy: "source" and "destination".
//   - POST /v1/audio/transcriptions: a multipart form; the model is Request.FormValue("model"), which also
//     reads the URL query (for a multipart body the query's value comes first), then the chat handler acts on it.
//
// Cloud rule (modelref.ParseRef): trim Unicode white space (strings.TrimSpace); empty is an error. Take the text
// after the LAST ':'; trim it; compare lower-cased: "cloud" -> cloud (base: text before that ':'), "local" ->
// local; otherwise, if it holds no '/' and ends in "-cloud" (lower-cased) -> cloud. A name with no ':' is never a
// cloud name ("x-cloud" is local; "x:8b-cloud", "x:cloud", "x:CLOUD", "x: cloud ", "h:5000/x:cloud" are cloud).
// When a suffix was found and the base carries another one ("x:cloud:cloud", "x:local:cloud") the reference is
// an error and nothing goes to the cloud; Ollama also requires the base to be a valid model name. This oracle
// reports `cloud: true` for every string whose ParseRef source is cloud, before the base name check, which is
// the conservative side for a gate.
//
// Where the cloud passthrough sits: POST /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses,
// /v1/messages (body) and GET /v1/models/:model (path). /api/generate, /api/chat, /api/embed, /api/embeddings
// and /api/show send cloud models to ollama.com from inside their handlers.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// Route classes, as Tollgate's route policy names them. Only inference and read-only handlers may ever run
// for a non-admin user.
const (
	classInference = "inference"
	classReadOnly  = "readonly"
	classAdmin     = "admin"
	classBlobs     = "blobs"
	classAccount   = "account"
	classOther     = "other" // routes Ollama has that Tollgate does not list
	classNone      = "none"  // no handler ran: a redirect, 404 or 405 answered by the mux or gin
)

// Reading is one place Ollama takes a model name from.
type Reading struct {
	By      string `json:"by"`      // "map[model]", "struct.model", "struct.name", "path:model", "form:model", ...
	Status  string `json:"status"`  // "string", "absent", "null", "non-string", "unparseable", "unread"
	Value   string `json:"value"`   // the string as decoded (status "string")
	Trimmed string `json:"trimmed"` // strings.TrimSpace(value), what ParseRef works on
	Cloud   bool   `json:"cloud"`   // ParseRef would mark it cloud
	Acts    bool   `json:"acts"`    // the handler or middleware acts on this reading
	Detail  string `json:"detail,omitempty"`
}

// Report is the answer to every request and one line of the log.
type Report struct {
	Case       string    `json:"case"` // the X-Oracle-Case header, for tests
	Route      string    `json:"route"`
	Class      string    `json:"class"`
	Method     string    `json:"method"`
	RequestURI string    `json:"request_uri"`
	Path       string    `json:"path"`
	RawPath    string    `json:"raw_path"`
	RawQuery   string    `json:"raw_query"`
	Host       string    `json:"host"`
	Origin     string    `json:"origin,omitempty"`
	ContentEnc string    `json:"content_encoding,omitempty"`
	Status     int       `json:"status"`
	Location   string    `json:"location,omitempty"`
	BodyLen    int       `json:"body_len"`
	Readings   []Reading `json:"readings"`
	// What the inference handlers read of the fields Tollgate clamps (inference routes only).
	Generation *Generation `json:"generation,omitempty"`
	// Credentials headers that reached the upstream (Ollama's cloud passthrough copies client headers to
	// ollama.com, so a proxy must not pass its users' credentials on).
	Credentials []string `json:"credentials"`
	// The model lists answer in Ollama's list shapes too (an empty list, beside the report), since a proxy may
	// read them as lists: "models" for /api/tags and /api/ps, "object" and "data" for /v1/models.
	Models json.RawMessage `json:"models,omitempty"`
	Object string          `json:"object,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
}

type reportKey struct{}

var logMu sync.Mutex
var logFile *os.File

func appendLog(r *Report) {
	line, err := json.Marshal(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, "oracle: encoding a report:", err)
		return
	}
	line = append(line, '\n')
	logMu.Lock()
	defer logMu.Unlock()
	if logFile != nil {
		if _, err := logFile.Write(line); err != nil {
			fmt.Fprintln(os.Stderr, "oracle: writing the log:", err)
		}
	}
}

// ---------------------------------------------------------------------------------------------------------------
// The cloud rule, written from modelref.ParseRef's behaviour.

func sourceSuffix(raw string) (base string, source string, explicit bool) {
	i := strings.LastIndex(raw, ":")
	if i < 0 {
		return raw, "", false
	}
	suffixRaw := strings.TrimSpace(raw[i+1:])
	suffix := strings.ToLower(suffixRaw)
	switch suffix {
	case "cloud":
		return raw[:i], "cloud", true
	case "local":
		return raw[:i], "local", true
	}
	if !strings.Contains(suffixRaw, "/") && strings.HasSuffix(suffix, "-cloud") {
		return raw[:i+1] + suffixRaw[:len(suffixRaw)-len("-cloud")], "cloud", true
	}
	return raw, "", false
}

// isCloud: ParseRef accepts the string and names the cloud as its source.
func isCloud(raw string) bool {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return false
	}
	base, source, explicit := sourceSuffix(raw)
	if explicit {
		if _, _, nested := sourceSuffix(base); nested {
			return false // conflicting suffixes: an error, nothing is sent anywhere
		}
	}
	return source == "cloud"
}

func stringReading(by, v string, acts bool) Reading {
	t := strings.TrimSpace(v)
	return Reading{By: by, Status: "string", Value: v, Trimmed: t, Cloud: isCloud(v), Acts: acts}
}

// ---------------------------------------------------------------------------------------------------------------
// Body readings.

func readBody(c *gin.Context) []byte {
	if c.Request.Body == nil {
		return nil
	}
	b, err := io.ReadAll(c.Request.Body)
	if err != nil {
		report(c).Readings = append(report(c).Readings, Reading{By: "body", Status: "unread", Detail: err.Error()})
	}
	c.Request.Body = io.NopCloser(bytes.NewReader(b))
	c.Set("body", b)
	return b
}

// mapReading is the cloud passthrough middleware's: json.Unmarshal into map[string]json.RawMessage, exact key.
func mapReading(body []byte) Reading {
	r := Reading{By: "map[model]", Acts: true}
	if len(body) == 0 {
		r.Status = "absent"
		r.Detail = "empty body"
		return r
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		r.Status = "unparseable"
		r.Detail = err.Error()
		return r
	}
	raw, ok := m["model"]
	if !ok {
		r.Status = "absent"
		return r
	}
	if string(bytes.TrimSpace(raw)) == "null" {
		r.Status = "null"
		return r
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		r.Status = "non-string"
		r.Detail = string(raw)
		return r
	}
	out := stringReading("map[model]", s, true)
	if out.Trimmed == "" {
		out.Detail = "empty after trimming: not taken"
	}
	return out
}

// structFields decodes the body as gin's ShouldBindJSON does (one Decode into a struct) and returns the named
// string fields. The fields are plain strings as in Ollama's request types, so a later `"model": null` leaves an
// earlier value in place. A decode error means the handler answers 400 and acts on nothing.
func structFields(body []byte) (map[string]string, error) {
	var v struct {
		Model       string `json:"model"`
		Name        string `json:"name"`
		From        string `json:"from"`
		Source      string `json:"source"`
		Destination string `json:"destination"`
	}
	err := json.NewDecoder(bytes.NewReader(body)).Decode(&v)
	return map[string]string{"model": v.Model, "name": v.Name, "from": v.From, "source": v.Source,
		"destination": v.Destination}, err
}

// structReadings gives one reading per field, in the handler's cmp.Or order: the first non-empty one acts.
func structReadings(body []byte, fields ...string) []Reading {
	got, err := structFields(body)
	if err != nil {
		detail := err.Error()
		if err == io.EOF {
			detail = "missing request body"
		}
		return []Reading{{By: "struct", Status: "unparseable", Detail: detail + " (handler answers 400)"}}
	}
	var out []Reading
	acted := false
	for _, f := range fields {
		v := got[f]
		if v == "" {
			out = append(out, Reading{By: "struct." + f, Status: "absent", Detail: "absent, null or empty"})
			continue
		}
		out = append(out, stringReading("struct."+f, v, !acted))
		acted = true
	}
	return out
}

// ---------------------------------------------------------------------------------------------------------------
// The fields Tollgate clamps (max-context, max-predict, keep-alive) and asks for (include_usage), read as Ollama
// reads them: /api/* decode options as map[string]any (exact keys, a number truncated to int64 by
// Options.FromMap, null skipped, any other type an error) and keep_alive with api.Duration's UnmarshalJSON; the
// OpenAI and Anthropic middlewares decode their structs and map max_tokens / max_output_tokens to num_predict.

// Generation is what the handler would run with. Nil fields: not set by the request (the server's default).
type Generation struct {
	Error      string `json:"error,omitempty"` // the handler or middleware would answer 400
	NumCtx     *int64 `json:"num_ctx"`
	NumPredict *int64 `json:"num_predict"`
	// keep_alive in seconds; -1 when Ollama reads "forever" (any negative value).
	KeepAlive    *float64 `json:"keep_alive"`
	Stream       bool     `json:"stream"`
	IncludeUsage bool     `json:"include_usage"`
	// What reaches past the request's own generation: the options map's keys with a value (FromMap skips null),
	// shift (generate, chat) and template (generate) as the handler reads them, and whether the Anthropic or
	// Responses layer would run its web search (a tool type starting "web_search", blanks trimmed as the cloud
	// proxy does; the Responses layer's "web_search", nested namespace tools included).
	OptionKeys []string `json:"option_keys"`
	// Every key of the options map, null ones included: Ollama's modelOptions tests some by presence alone
	// (num_ctx and num_batch turn their automatic sizing off, draft_num_predict keeps its default).
	PresentOptionKeys []string `json:"present_option_keys"`
	Shift             *bool    `json:"shift"`
	Template          string   `json:"template"`
	WebSearch         bool     `json:"web_search"`
}

type toolType struct {
	Type  string     `json:"type"`
	Tools []toolType `json:"tools"`
}

func hasWebSearch(tools []toolType) bool {
	for _, t := range tools {
		if strings.HasPrefix(strings.TrimSpace(t.Type), "web_search") || hasWebSearch(t.Tools) {
			return true
		}
	}
	return false
}

// ollamaDuration is api.Duration's UnmarshalJSON, reporting seconds (-1: forever).
type ollamaDuration struct{ seconds float64 }

func (d *ollamaDuration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch t := v.(type) {
	case float64:
		if t < 0 {
			d.seconds = -1
		} else {
			d.seconds = float64(time.Duration(t*float64(time.Second))) / float64(time.Second)
		}
	case string:
		p, err := time.ParseDuration(t)
		if err != nil {
			return err
		}
		if p < 0 {
			d.seconds = -1
		} else {
			d.seconds = p.Seconds()
		}
	default:
		return fmt.Errorf("Unsupported type: '%s'", reflect.TypeOf(v))
	}
	return nil
}

func optionInt(m map[string]any, key string) (*int64, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return nil, nil
	}
	if f, ok := v.(float64); ok {
		n := int64(f)
		return &n, nil
	}
	return nil, fmt.Errorf("option %q must be of type integer", key)
}

func intPtr(p *int) *int64 {
	if p == nil {
		return nil
	}
	n := int64(*p)
	return &n
}

func generationReading(route string, body []byte) *Generation {
	g := &Generation{}
	dec := json.NewDecoder(bytes.NewReader(body))
	switch route {
	case "POST /api/generate", "POST /api/chat", "POST /api/embed", "POST /api/embeddings":
		var v struct {
			Options   map[string]any  `json:"options"`
			KeepAlive *ollamaDuration `json:"keep_alive"`
			Stream    *bool           `json:"stream"`
			Shift     *bool           `json:"shift"`
			Template  string          `json:"template"`
		}
		if err := dec.Decode(&v); err != nil {
			g.Error = err.Error()
			return g
		}
		g.OptionKeys = []string{}
		g.PresentOptionKeys = []string{}
		for k, val := range v.Options {
			if val != nil {
				g.OptionKeys = append(g.OptionKeys, k)
			}
			g.PresentOptionKeys = append(g.PresentOptionKeys, k)
		}
		sort.Strings(g.OptionKeys)
		sort.Strings(g.PresentOptionKeys)
		if route == "POST /api/generate" || route == "POST /api/chat" {
			g.Shift = v.Shift
		}
		if route == "POST /api/generate" {
			g.Template = v.Template
		}
		var err error
		if g.NumCtx, err = optionInt(v.Options, "num_ctx"); err != nil {
			g.Error = err.Error()
		}
		if g.NumPredict, err = optionInt(v.Options, "num_predict"); err != nil {
			g.Error = err.Error()
		}
		if v.KeepAlive != nil {
			s := v.KeepAlive.seconds
			g.KeepAlive = &s
		}
		g.Stream = v.Stream == nil || *v.Stream
	case "POST /v1/chat/completions", "POST /v1/completions":
		var v struct {
			MaxTokens     *int `json:"max_tokens"`
			Stream        bool `json:"stream"`
			StreamOptions *struct {
				IncludeUsage bool `json:"include_usage"`
			} `json:"stream_options"`
		}
		if err := dec.Decode(&v); err != nil {
			g.Error = err.Error()
			return g
		}
		g.NumPredict = intPtr(v.MaxTokens)
		g.Stream = v.Stream
		g.IncludeUsage = v.StreamOptions != nil && v.StreamOptions.IncludeUsage
	case "POST /v1/responses":
		var v struct {
			MaxOutputTokens *int       `json:"max_output_tokens"`
			Stream          bool       `json:"stream"`
			Tools           []toolType `json:"tools"`
		}
		if err := dec.Decode(&v); err != nil {
			g.Error = err.Error()
			return g
		}
		g.WebSearch = hasWebSearch(v.Tools)
		g.NumPredict = intPtr(v.MaxOutputTokens)
		g.Stream = v.Stream
	case "POST /v1/messages":
		var v struct {
			MaxTokens int        `json:"max_tokens"`
			Stream    bool       `json:"stream"`
			Tools     []toolType `json:"tools"`
		}
		if err := dec.Decode(&v); err != nil {
			g.Error = err.Error()
			return g
		}
		g.WebSearch = hasWebSearch(v.Tools)
		if v.MaxTokens <= 0 {
			g.Error = "max_tokens is required and must be positive"
		}
		n := int64(v.MaxTokens)
		g.NumPredict = &n
		g.Stream = v.Stream
	default:
		return nil
	}
	return g
}

// ---------------------------------------------------------------------------------------------------------------
// Handlers.

func report(c *gin.Context) *Report {
	v, _ := c.Request.Context().Value(reportKey{}).(*Report)
	if v == nil {
		v = &Report{}
	}
	return v
}

func finish(c *gin.Context, route, class string, readings []Reading) {
	rep := report(c)
	if class == classInference {
		if body, ok := c.Get("body"); ok {
			rep.Generation = generationReading(route, body.([]byte))
		}
	}
	rep.Route = route
	rep.Class = class
	rep.Readings = append(rep.Readings, readings...)
	rep.Status = http.StatusOK
	c.JSON(http.StatusOK, rep)
}

// listing: a model list's handler, which reads no model and answers an empty list in the route's shape.
func listing(route, class string, openAI bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		rep := report(c)
		rep.BodyLen = len(readBody(c))
		if openAI {
			rep.Object, rep.Data = "list", json.RawMessage("null")
		} else {
			rep.Models = json.RawMessage("[]")
		}
		finish(c, route, class, nil)
	}
}

// plain: a handler that reads no model.
func plain(route, class string) gin.HandlerFunc {
	return func(c *gin.Context) {
		report(c).BodyLen = len(readBody(c))
		finish(c, route, class, nil)
	}
}

// bodyStruct: a handler that binds the JSON body and acts on the first non-empty of fields.
func bodyStruct(route, class string, fields ...string) gin.HandlerFunc {
	return func(c *gin.Context) {
		body := readBody(c)
		report(c).BodyLen = len(body)
		finish(c, route, class, structReadings(body, fields...))
	}
}

// cloudThenStruct: the /v1 chain, cloud passthrough middleware then the compatibility middleware's struct.
func cloudThenStruct(route string) gin.HandlerFunc {
	return func(c *gin.Context) {
		body := readBody(c)
		report(c).BodyLen = len(body)
		if c.Request.Method == http.MethodPost && c.GetHeader("Content-Encoding") == "zstd" {
			finish(c, route, classInference, []Reading{{By: "map[model]", Status: "unread", Acts: true,
				Detail: "zstd body: Ollama decompresses it before reading the model; this oracle cannot"}})
			return
		}
		readings := []Reading{mapReading(body)}
		if m := readings[0]; m.Status == "string" && m.Cloud {
			// Ollama stops here and proxies to ollama.com; the struct is never read.
			finish(c, route, classInference, readings)
			return
		}
		finish(c, route, classInference, append(readings, structReadings(body, "model")...))
	}
}

// modelPath: GET /v1/models/:model, the path cloud middleware then a show of Name = param.
func modelPath(c *gin.Context) {
	report(c).BodyLen = len(readBody(c))
	p := c.Param("model")
	r := stringReading("path:model", p, strings.TrimSpace(p) != "")
	finish(c, "GET /v1/models/:model", classReadOnly, []Reading{r})
}

// transcriptions: multipart form, FormValue("model") (query values first).
func transcriptions(c *gin.Context) {
	rep := report(c)
	var readings []Reading
	if err := c.Request.ParseMultipartForm(25 << 20); err != nil {
		readings = append(readings, Reading{By: "form:model", Status: "unparseable", Detail: err.Error()})
	} else if v := c.Request.FormValue("model"); v == "" {
		readings = append(readings, Reading{By: "form:model", Status: "absent"})
	} else {
		readings = append(readings, stringReading("form:model", v, true))
	}
	rep.BodyLen = int(c.Request.ContentLength)
	finish(c, "POST /v1/audio/transcriptions", classOther, readings)
}

func routes(r *gin.Engine) {
	// General
	r.HEAD("/", plain("HEAD /", classReadOnly))
	r.GET("/", plain("GET /", classReadOnly))
	r.HEAD("/api/version", plain("HEAD /api/version", classReadOnly))
	r.GET("/api/version", plain("GET /api/version", classReadOnly))
	r.GET("/api/status", plain("GET /api/status", classOther))

	// Local model management
	r.POST("/api/pull", bodyStruct("POST /api/pull", classAdmin, "model", "name"))
	r.POST("/api/push", bodyStruct("POST /api/push", classAdmin, "model", "name"))
	r.HEAD("/api/tags", plain("HEAD /api/tags", classReadOnly))
	r.GET("/api/tags", listing("GET /api/tags", classReadOnly, false))
	r.POST("/api/show", bodyStruct("POST /api/show", classReadOnly, "model", "name"))
	r.DELETE("/api/delete", bodyStruct("DELETE /api/delete", classAdmin, "model", "name"))
	r.POST("/api/me", plain("POST /api/me", classAccount))
	r.POST("/api/signout", plain("POST /api/signout", classAccount))
	r.DELETE("/api/user/keys/:encodedKey", plain("DELETE /api/user/keys/:encodedKey", classAccount))

	// Create
	r.POST("/api/create", bodyStruct("POST /api/create", classAdmin, "model", "from"))
	r.POST("/api/blobs/:digest", plain("POST /api/blobs/:digest", classBlobs))
	r.HEAD("/api/blobs/:digest", plain("HEAD /api/blobs/:digest", classBlobs))
	r.POST("/api/copy", bodyStruct("POST /api/copy", classAdmin, "source", "destination"))
	r.POST("/api/experimental/web_search", plain("POST /api/experimental/web_search", classAccount))
	r.POST("/api/experimental/web_fetch", plain("POST /api/experimental/web_fetch", classAccount))
	r.GET("/api/experimental/model-recommendations",
		plain("GET /api/experimental/model-recommendations", classAccount))

	// Inference
	r.GET("/api/ps", listing("GET /api/ps", classReadOnly, false))
	r.POST("/api/generate", bodyStruct("POST /api/generate", classInference, "model"))
	r.POST("/api/chat", bodyStruct("POST /api/chat", classInference, "model"))
	r.POST("/api/embed", bodyStruct("POST /api/embed", classInference, "model"))
	r.POST("/api/embeddings", bodyStruct("POST /api/embeddings", classInference, "model"))

	// OpenAI and Anthropic compatibility
	r.POST("/v1/chat/completions", cloudThenStruct("POST /v1/chat/completions"))
	r.POST("/v1/completions", cloudThenStruct("POST /v1/completions"))
	r.POST("/v1/embeddings", cloudThenStruct("POST /v1/embeddings"))
	r.GET("/v1/models", listing("GET /v1/models", classReadOnly, true))
	r.GET("/v1/models/:model", modelPath)
	r.POST("/v1/responses", cloudThenStruct("POST /v1/responses"))
	r.POST("/v1/audio/transcriptions", transcriptions)
	r.POST("/v1/messages", cloudThenStruct("POST /v1/messages"))
}

// ---------------------------------------------------------------------------------------------------------------
// The Go 1.22+ ServeMux step in front of gin.

// cleanPath is net/http's: path.Clean on a rooted path, keeping a trailing slash.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		if len(p) == len(np)+1 && strings.HasPrefix(p, np) {
			np = p
		} else {
			np += "/"
		}
	}
	return np
}

// statusWriter logs the report when the answer's status line is written, before any byte of it leaves, so a
// test that has read the answer finds the line in the log. When no handler of ours ran (gin's redirect, 404,
// 405), the status tells what gin did.
type statusWriter struct {
	http.ResponseWriter
	rep    *Report
	logged bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.logged {
		w.logged = true
		rep := w.rep
		rep.Status = code
		rep.Location = w.Header().Get("Location")
		if rep.Route == "" {
			rep.Class = classNone
			switch {
			case code >= 300 && code < 400:
				rep.Route = fmt.Sprintf("gin redirect %d", code)
			default:
				rep.Route = fmt.Sprintf("gin %d", code)
			}
		}
		appendLog(rep)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.logged {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

type muxFront struct{ engine *gin.Engine }

func (m muxFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rep := &Report{
		Case:        r.Header.Get("X-Oracle-Case"),
		Method:      r.Method,
		RequestURI:  r.RequestURI,
		Path:        r.URL.Path,
		RawPath:     r.URL.RawPath,
		RawQuery:    r.URL.RawQuery,
		Host:        r.Host,
		Origin:      r.Header.Get("Origin"),
		ContentEnc:  r.Header.Get("Content-Encoding"),
		Credentials: []string{},
		Readings:    []Reading{},
	}
	for _, h := range []string{"Authorization", "X-Api-Key", "Cookie", "Proxy-Authorization"} {
		if _, ok := r.Header[h]; ok {
			rep.Credentials = append(rep.Credentials, h)
		}
	}
	sw := &statusWriter{ResponseWriter: w, rep: rep}
	if r.RequestURI == "*" {
		// ServeMux answers an asterisk-form target (other than OPTIONS *, which the server answers) with 400.
		rep.Route, rep.Class = "mux *", classNone
		w.Header().Set("Connection", "close")
		sw.WriteHeader(http.StatusBadRequest)
		return
	}
	if r.Method == http.MethodConnect {
		rep.Route, rep.Class = "mux CONNECT", classNone
		http.NotFound(sw, r)
		return
	}
	escaped := r.URL.EscapedPath()
	if p := cleanPath(escaped); p != escaped {
		u := &url.URL{Path: p, RawQuery: r.URL.RawQuery}
		rep.Route, rep.Class = "mux redirect", classNone
		http.Redirect(sw, r, u.String(), http.StatusMovedPermanently)
		return
	}
	m.engine.ServeHTTP(sw, r.WithContext(contextWith(r, rep)))
	if !sw.logged {
		sw.WriteHeader(http.StatusOK) // nothing was written at all
	}
}

func contextWith(r *http.Request, rep *Report) context.Context {
	return context.WithValue(r.Context(), reportKey{}, rep)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (port 0: the kernel picks one)")
	logPath := flag.String("log", "", "append one JSON line per request to this file")
	flag.Parse()

	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "oracle:", err)
			os.Exit(2)
		}
		logFile = f
	}

	gin.SetMode(gin.ReleaseMode)
	engine := gin.New()
	engine.Use(gin.Recovery())
	engine.HandleMethodNotAllowed = true
	// gin's defaults, stated so a change in gin shows up here: Ollama sets none of these.
	engine.UseRawPath = false
	engine.UnescapePathValues = true
	engine.RedirectTrailingSlash = true
	engine.RedirectFixedPath = false
	engine.RemoveExtraSlash = false
	routes(engine)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "oracle:", err)
		os.Exit(2)
	}
	fmt.Printf("ollama-oracle listening on http://%s\n", ln.Addr().String())
	os.Stdout.Sync()
	srv := &http.Server{Handler: muxFront{engine: engine}}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "oracle:", err)
		os.Exit(1)
	}
}
