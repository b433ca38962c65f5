package mqtt

import (
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/internal/testenv"
	"github.com/bucketrelay/bucketrelay/testkit/sendtest"
)

// BenchmarkSend measures QoS 1 sends of 1,000 events to the system
// Mosquitto: the relay's target with one send at a time and with 4 at once
// (the kind's default window), beside paho publishing the same bodies and
// waiting for every PUBACK per 1,000, with no subscriber.
func BenchmarkSend(b *testing.B) {
	testenv.Require(b, "mosquitto", brokerAddr)
	topic := fmt.Sprintf("minio/bench-%d", os.Getpid())
	items := sendtest.BenchItems(1000)
	sendtest.BenchTarget(b, items, func() (delivery.Target, error) {
		return New(Config{Enable: true, Broker: brokerURL, Topic: topic, QoS: 1}, slog.New(slog.DiscardHandler))
	})
	b.Run("direct-1", func(b *testing.B) {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(brokerURL).SetClientID(fmt.Sprintf("bench-direct-%d", os.Getpid())).
			SetCleanSession(true).SetAutoReconnect(false).SetOrderMatters(true))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			b.Fatalf("connect: %v", tok.Error())
		}
		defer c.Disconnect(100)
		bodies := make([][]byte, len(items))
		for i := range items {
			bodies[i] = items[i].Message()
		}
		toks := make([]paho.Token, len(items))
		sendtest.Measure(b, len(items), 1, func() error {
			for i := range bodies {
				toks[i] = c.Publish(topic, 1, false, bodies[i])
			}
			for _, tok := range toks {
				if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
					return fmt.Errorf("publish: %v", tok.Error())
				}
			}
			return nil
		})
	})
}
