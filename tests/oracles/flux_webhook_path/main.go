// flux-webhook-path prints the path Flux's notification-controller serves a Receiver on, computed
// by Flux's own API package (notification-controller v1.7.5, what Flux v2.7.5 ships):
//
//	flux-webhook-path TOKEN NAME NAMESPACE
package main

import (
	"fmt"
	"os"

	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: flux-webhook-path TOKEN NAME NAMESPACE")
		os.Exit(2)
	}
	receiver := notificationv1.Receiver{ObjectMeta: metav1.ObjectMeta{Name: os.Args[2], Namespace: os.Args[3]}}
	fmt.Print(receiver.GetWebhookPath(os.Args[1]))
}
