// Command ssh-host-key connects to an SSH server the way pulumi-command v1.2.1 does when a
// connection has a hostKey (provider/pkg/provider/remote/connection.go): the key is parsed with
// ssh.ParseAuthorizedKey, checked with ssh.FixedHostKey, and offered as the only host key
// algorithm. It runs `true` and exits 0 when the server proved that key, 1 when it did not.
//
// Usage: ssh-host-key HOST:PORT USER CLIENT_KEY_FILE 'HOST_KEY'
package main

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/crypto/ssh"
)

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: ssh-host-key HOST:PORT USER CLIENT_KEY_FILE HOST_KEY")
		os.Exit(2)
	}
	address, user, keyFile, hostKey := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	pem, err := os.ReadFile(keyFile)
	if err != nil {
		fail(2, err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		fail(2, err)
	}
	expected, _, _, _, err := ssh.ParseAuthorizedKey([]byte(hostKey))
	if err != nil {
		fail(2, fmt.Errorf("hostKey does not parse: %w", err))
	}
	client, err := ssh.Dial("tcp", address, &ssh.ClientConfig{
		User:              user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   ssh.FixedHostKey(expected),
		HostKeyAlgorithms: []string{expected.Type()},
		Timeout:           10 * time.Second,
	})
	if err != nil {
		fail(1, err)
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		fail(1, err)
	}
	defer session.Close()
	if err := session.Run("true"); err != nil {
		fail(1, err)
	}
}

func fail(code int, err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(code)
}
