"""The MQTT adapter (`onshore mqtt`): a fleet's MQTT messages in, each acknowledged only after its commit.

It admits only, like every adapter: the topic says which gateway sent a message (the broker authenticated the
publisher and its ACL limits where it may publish), the registry which vehicle the topic's VIN is, and the
fleet-telemetry and onshore decoders what the payload holds; the batches end in the ingest service and its bus.

* `topics`: the topic layout (fleet-telemetry's MQTT dispatcher, onshore batches) and the gateway of a topic;
* `messages`: one message's payload as records;
* `batcher`: messages held per vehicle, submitted, acknowledged in order after the commit;
* `refusals`: refused messages counted, logged and reported;
* `subscriber`: the paho MQTT 5 client (persistent session, shared subscriptions, manual acknowledgement).

See docs/mqtt.md.
"""

from onshore.ingest.mqtt.subscriber import MqttSubscriber
from onshore.ingest.mqtt.topics import MessageKind, TopicAddress, TopicLayout

__all__ = ["MessageKind", "MqttSubscriber", "TopicAddress", "TopicLayout"]
