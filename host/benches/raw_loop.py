"""The same consume-and-produce loop on confluent-kafka-python in asynchronous
mode: what Monasca's own plan (librdkafka through confluent-kafka) would give.
Batches of up to 1000 messages or 100 ms; every record of a batch is produced
asynchronously, the batch is flushed, then its offsets are stored and
committed asynchronously. Same producer settings as the host.

Usage: python3 raw_loop.py BOOTSTRAP INPUT OUTPUT GROUP   (stops on SIGTERM)
"""
import signal
import sys

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

bootstrap, source, sink, group = sys.argv[1:5]
running = True


def stop(*_):
    global running
    running = False


signal.signal(signal.SIGTERM, stop)
consumer = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": group,
    "partition.assignment.strategy": "cooperative-sticky",
    "enable.auto.offset.store": False,
    "enable.auto.commit": True,
    "auto.commit.interval.ms": 250,
    "auto.offset.reset": "earliest",
})
producer = Producer({
    "bootstrap.servers": bootstrap,
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 5,
    "batch.num.messages": 10000,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 1000000,
})
failures = []


def delivered(err, _msg):
    if err is not None:
        failures.append(err)


consumer.subscribe([source])
while running:
    batch = consumer.consume(num_messages=1000, timeout=0.1)
    if not batch:
        continue
    for message in batch:
        if message.error():
            raise KafkaException(message.error())
        producer.produce(sink, message.value(), message.key(), on_delivery=delivered)
        producer.poll(0)
    producer.flush()
    if failures:
        raise KafkaException(failures[0])
    last = {}
    for message in batch:
        last[(message.topic(), message.partition())] = message.offset()
    consumer.store_offsets(offsets=[TopicPartition(t, p, o + 1) for (t, p), o in last.items()])
consumer.close()
