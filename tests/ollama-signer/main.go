// Command ollama-signer signs requests the way the ollama CLI does when OLLAMA_AUTH is set, for the tests of
// Tollgate's authorized-keys logins (tests/clients/test_ollama_auth.py), where the real ollama binary is not
// installed.
//
// What the CLI does (Ollama's api/client.go and auth/auth.go): it takes the Unix time in seconds as ts, signs the
// bytes "METHOD,PATH?ts=TS" (PATH as the client method names it, e.g. /api/tags) with the ed25519 key in
// ~/.ollama/id_ed25519 (an OpenSSH private key, read with ssh.ParsePrivateKey), adds ts to the URL's query, and
// sends "Authorization: KEY:SIG", where KEY is the second field of the key's authorized_keys line
// (ssh.MarshalAuthorizedKey: standard base64 of the SSH wire blob) and SIG the standard base64 of the raw
// 64-byte signature.
//
//	ollama-signer keygen DIR
//	    writes DIR/id_ed25519 (OpenSSH format, mode 0600) and DIR/id_ed25519.pub, as the ollama server does on
//	    first start
//	ollama-signer sign -key DIR/id_ed25519 -method POST -path /api/generate [-ts 1733350000]
//	    prints one JSON object: {"authorization": "...", "ts": "...", "query": "ts=..."}
//
// Built in GOPATH mode from Debian's golang-golang-x-crypto-dev (see .ci/run).
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: ollama-signer keygen DIR | sign -key FILE -method M -path P [-ts N]")
	}
	switch os.Args[1] {
	case "keygen":
		if len(os.Args) != 3 {
			fail("usage: ollama-signer keygen DIR")
		}
		keygen(os.Args[2])
	case "sign":
		sign(os.Args[2:])
	default:
		fail("unknown command " + os.Args[1])
	}
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, "ollama-signer: "+message)
	os.Exit(2)
}

// keygen writes a fresh ed25519 key pair in the files and formats the ollama CLI reads.
func keygen(dir string) {
	public, private, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		fail(err.Error())
	}
	sshPublic, err := ssh.NewPublicKey(public)
	if err != nil {
		fail(err.Error())
	}
	block := &pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: openSSHPrivateKey(sshPublic, private)}
	if err := os.WriteFile(filepath.Join(dir, "id_ed25519"), pem.EncodeToMemory(block), 0o600); err != nil {
		fail(err.Error())
	}
	if err := os.WriteFile(filepath.Join(dir, "id_ed25519.pub"), ssh.MarshalAuthorizedKey(sshPublic), 0o644); err != nil {
		fail(err.Error())
	}
}

// openSSHPrivateKey is the unencrypted "openssh-key-v1" container (OpenSSH's PROTOCOL.key) holding one ed25519 key:
// this x/crypto (0.4) parses it but cannot write it yet.
func openSSHPrivateKey(public ssh.PublicKey, private ed25519.PrivateKey) []byte {
	str := func(b *bytes.Buffer, data []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(data)))
		b.Write(n[:])
		b.Write(data)
	}
	u32 := func(b *bytes.Buffer, v uint32) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], v)
		b.Write(n[:])
	}
	var check [4]byte
	if _, err := rand.Read(check[:]); err != nil {
		fail(err.Error())
	}
	var secret bytes.Buffer
	secret.Write(check[:])
	secret.Write(check[:])
	str(&secret, []byte(ssh.KeyAlgoED25519))
	str(&secret, private.Public().(ed25519.PublicKey))
	str(&secret, private)
	str(&secret, nil) // comment
	for i := byte(1); secret.Len()%8 != 0; i++ {
		secret.WriteByte(i)
	}
	var out bytes.Buffer
	out.WriteString("openssh-key-v1\x00")
	str(&out, []byte("none"))
	str(&out, []byte("none"))
	str(&out, nil)
	u32(&out, 1)
	str(&out, public.Marshal())
	str(&out, secret.Bytes())
	return out.Bytes()
}

// sign prints what the ollama CLI would send for one request.
func sign(args []string) {
	flags := flag.NewFlagSet("sign", flag.ExitOnError)
	keyPath := flags.String("key", "", "OpenSSH ed25519 private key (the CLI's ~/.ollama/id_ed25519)")
	method := flags.String("method", "GET", "HTTP method")
	path := flags.String("path", "/api/tags", "request path, as the client method names it")
	ts := flags.String("ts", "", "Unix seconds to sign (default: now)")
	_ = flags.Parse(args)
	if *keyPath == "" {
		fail("sign needs -key")
	}
	now := *ts
	if now == "" {
		now = strconv.FormatInt(time.Now().Unix(), 10)
	}
	pemBytes, err := os.ReadFile(*keyPath)
	if err != nil {
		fail(err.Error())
	}
	signer, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		fail(err.Error())
	}
	// The key part: the authorized_keys line's second field, without the type.
	fields := bytes.Fields(ssh.MarshalAuthorizedKey(signer.PublicKey()))
	if len(fields) < 2 {
		fail("malformed public key")
	}
	challenge := fmt.Sprintf("%s,%s?ts=%s", *method, *path, now)
	signature, err := signer.Sign(rand.Reader, []byte(challenge))
	if err != nil {
		fail(err.Error())
	}
	query := url.Values{}
	query.Set("ts", now)
	out, _ := json.Marshal(map[string]string{
		"authorization": fmt.Sprintf("%s:%s", fields[1], base64.StdEncoding.EncodeToString(signature.Blob)),
		"ts":            now,
		"query":         query.Encode(),
	})
	fmt.Println(string(out))
}
