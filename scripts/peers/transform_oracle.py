#!/usr/bin/env python3
"""Differential oracle: the ORIGINAL monasca-transform 2.0.0 aggregation on a file of metrics.

Our own code (not part of monasca-transform). Run it through scripts/peers/transform_oracle.sh,
which creates the venv (monasca-transform==2.0.0 from PyPI, pyspark 3.5) and calls

  transform_oracle.py INPUT.jsonl OUTPUT.jsonl --pre-transform-specs F --transform-specs F
                      [--pre-hourly-output F]

INPUT has one metric envelope per line, as monasca-api puts them on the `metrics` topic:
  {"metric":{"name":..,"dimensions":{..},"timestamp":<ms>,"value":..,"value_meta":..},
   "meta":{"tenantId":..,"region":..},"creation_time":<s>}
The whole file is ONE stage-1 batch (one Kafka RDD of the `metrics` topic, one message a line).
It runs the original's own code, in a local Spark (local[2], UTC):

  stage 1   MonMetricsKafkaProcessor.store_offset_ranges + rdd_to_recordstore (the real Spark
            Streaming batch function: pre_transform_specs join, required-field validation,
            record store, then per metric_id GenericTransformBuilder -> usage/setter/insert
            components, KafkaInsertPreHourly publishing instance-usage records), which then
            calls PreHourlyProcessor.is_time_to_run and
  stage 2   PreHourlyProcessor.run_processor (offset ranges, effective-revision extension,
            pre_hourly_to_instance_usage_df with batch-time filtering, do_transform with
            RollupQuantity.do_rollup / PreHourlyCalculateRate, KafkaInsert: _prepare_metric,
            the monasca_common metric validation, publish).

OUTPUT gets the final metric envelopes the original publishes to the `metrics` topic, each
exactly as its KafkaMessageAdapter serializes it (json.dumps(metric, separators=(',', ':'))),
sorted by (metric.name, JSON of metric.dimensions with sorted keys, the line).
--pre-hourly-output gets the instance-usage records stage 1 publishes to `metrics_pre_hourly`
(same serialization), sorted by (processing_meta.metric_id, the line).

Only the I/O is replaced, never an aggregation step:
  * Config: ConfigInitializer.basic_config() (called at import time and by every insert) reads
    a config file we write instead of /etc/monasca-transform.conf. Its values are those of the
    original devstack monasca-transform.conf (pre-hourly processor enabled, slack 600 s, batch
    time filtering on, effective_batch_revision 2, record-store and instance-usage caches on),
    except: the cache storage level is MEMORY_AND_DISK (pyspark 3 has no MEMORY_ONLY_SER_2),
    debug log entries off (they only add collect()s for log lines), publish_kafka_project_id
    and publish_region keep the original defaults ("111111", "useast"), and the two messaging
    adapters and the offsets repository point at the capturing classes below (the original's
    own plug-in options: [messaging] adapter / adapter_pre_hourly, [repositories] offsets).
  * Kafka publish: CaptureMetricsAdapter / CapturePreHourlyAdapter (MessageAdapter subclasses)
    keep json.dumps(metric, separators=(',', ':')) -- the exact bytes the original sends.
  * Kafka consume: pyspark 3 has no pyspark.streaming.kafka (removed with Spark 3.0), so a stub
    module provides OffsetRange/TopicAndPartition and KafkaUtils.createRDD, which returns the
    captured metrics_pre_hourly messages in the offset ranges the original computed, as
    (key, value) pairs like the 0.8 direct RDD. Stage 1's RDD is built from INPUT the same way
    ((None, line) per line, one partition-0 offset range 0..N). PreHourlyProcessor.
    _get_offsets_from_kafka (the KafkaClient offset request) answers earliest 0 / latest =
    number of captured pre-hourly messages.
  * Offsets/MySQL: MemoryOffsetSpecs keeps the offsets with MySQLOffsetSpecs's revision logic
    in memory. The data-driven specs use the real MySQLDataDrivenSpecsRepo; only its JDBC read
    (DataFrameReader(...).jdbc(url, table)) is replaced by the lines of the spec files, which is
    what the MySQL tables hold (one spec per row).
  * Clock: see simulated_times(). The pre-hourly processor filters instance usage by batch
    time: it keeps records with lastrecord_timestamp_string >= (batch time of its previous
    run, truncated to the hour) and firstrecord_timestamp_string < (datetime.now() truncated to
    the hour), and is_time_to_run() wants "now" >= top of the hour + late_metric_slack_time
    and the hour not yet processed. We simulate the run that processes the input's hours:
    previous pre-hourly run at FIRST_HOUR + 600 s (seeded in the offsets repository, so the
    lower bound is FIRST_HOUR), this run's batch time = datetime.now() = LAST_HOUR + 1 h +
    600 s (so the upper bound is LAST_HOUR + 1 h), FIRST_HOUR/LAST_HOUR being the hours of the
    earliest/latest metric timestamp in INPUT. pre_hourly_processor's `datetime` and
    component.insert's `time` (the metric timestamp/creation_time, which the original takes
    from the wall clock at publish time) see that simulated now, so the output is deterministic.
  * Spark workers (python daemons) also import monasca_transform.driver.mon_metrics_kafka
    (rdd.filter(MonMetricsKafkaProcessor._validate_raw_mon_metrics) is pickled by reference),
    which needs the stub module and the config: Spark starts this file as its python daemon
    module (spark.python.daemon.module), which installs the same two patches and then runs
    pyspark.daemon.manager().

Errors: any exception fails the run (exit 1, traceback on stderr). Stage 1 itself swallows an
exception of one metric_id (MonMetricsKafkaProcessor.process_metrics logs it and goes on to
the next metric_id); those are repeated on stderr as warnings. An empty final output fails.
The original's own prints and log go to a temporary directory (kept and named on failure).
"""

import argparse
import datetime
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
import types
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE = os.path.splitext(os.path.basename(__file__))[0]
CONF_ENV = "TRANSFORM_ORACLE_CONF"
DAEMON_ENV = "TRANSFORM_ORACLE_DAEMON"
METRICS_TOPIC = "metrics"
PRE_HOURLY_TOPIC = "metrics_pre_hourly"
PRE_HOURLY_APP = "mon_metrics_kafka_pre_hourly"
STAGE1_APP = "mon_metrics_kafka"
SLACK_SECONDS = 600  # [pre_hourly_processor] late_metric_slack_time, as written in the config

# Messages "published" to the topics, in publish order (the bytes KafkaMessageAdapter sends).
TOPICS = {METRICS_TOPIC: [], PRE_HOURLY_TOPIC: []}
# Counts of the stubbed Kafka reads, to check that the pre-hourly stage really ran.
KAFKA_READS = {"createRDD": 0}
STATE = {"spark_started": False}


# --------------------------------------------------------------------------------------------
# Patches shared by the driver and the Spark python daemon
# --------------------------------------------------------------------------------------------

class OffsetRange(object):
    """pyspark.streaming.kafka.OffsetRange (Spark <= 2.4) look-alike."""

    def __init__(self, topic, partition, fromOffset, untilOffset):
        self.topic = topic
        self.partition = partition
        self.fromOffset = fromOffset
        self.untilOffset = untilOffset

    def __repr__(self):
        return "OffsetRange(%s,%s,%s,%s)" % (self.topic, self.partition, self.fromOffset,
                                             self.untilOffset)


class TopicAndPartition(object):
    def __init__(self, topic, partition):
        self._topic = topic
        self._partition = partition


class KafkaUtils(object):
    """The two KafkaUtils calls of monasca-transform, answered from the captured topics."""

    @staticmethod
    def createRDD(sc, kafkaParams, offsetRanges, leaders=None, keyDecoder=None,
                  valueDecoder=None, messageHandler=None):
        KAFKA_READS["createRDD"] += 1
        records = []
        for o in offsetRanges:
            if o.partition != 0:
                raise RuntimeError("transform_oracle: topic %s has only partition 0, asked for %s"
                                   % (o.topic, o))
            messages = TOPICS[o.topic]
            records.extend((None, m) for m in messages[int(o.fromOffset):int(o.untilOffset)])
        return sc.parallelize(records, 1)  # one partition, like the topic

    @staticmethod
    def createDirectStream(*args, **kwargs):
        raise RuntimeError("transform_oracle: no streaming, the input is one RDD")


def install_kafka_stub():
    """pyspark.streaming.kafka was removed in Spark 3.0; the original imports it at load time."""
    import pyspark.streaming
    module = types.ModuleType("pyspark.streaming.kafka")
    module.OffsetRange = OffsetRange
    module.TopicAndPartition = TopicAndPartition
    module.KafkaUtils = KafkaUtils
    sys.modules["pyspark.streaming.kafka"] = module
    pyspark.streaming.kafka = module


def install_config(conf_path):
    """Every ConfigInitializer.basic_config() reads conf_path (not /etc/monasca-transform.conf)."""
    from monasca_transform.config.config_initializer import ConfigInitializer
    original = ConfigInitializer.basic_config

    def basic_config(default_config_files=None):
        return original(default_config_files=default_config_files or [conf_path])

    ConfigInitializer.basic_config = staticmethod(basic_config)
    ConfigInitializer.basic_config()


class _WorkerStdout(object):
    """sys.stdout of the python daemon: pyspark.daemon.manager() writes its port to
    sys.stdout.fileno() (the pipe the JVM reads), the original's print()s in the forked
    workers (e.g. _validate_raw_mon_metrics on every dropped metric) go to a log file."""

    def __init__(self, pipe_fd, log):
        self.pipe_fd = pipe_fd
        self.log = log

    def fileno(self):
        return self.pipe_fd

    def write(self, text):
        return self.log.write(text)

    def flush(self):
        self.log.flush()


def run_daemon():
    """Entry point when Spark starts this file as its python daemon module."""
    log = open(os.path.join(os.path.dirname(os.environ[CONF_ENV]), "worker.out"), "a")
    pipe_fd = os.dup(1)
    os.dup2(log.fileno(), 1)
    sys.stdout = _WorkerStdout(pipe_fd, log)
    install_kafka_stub()
    install_config(os.environ[CONF_ENV])
    import pyspark.daemon
    pyspark.daemon.manager()


# --------------------------------------------------------------------------------------------
# Capturing I/O classes (named in the config file as __main__:Class)
# --------------------------------------------------------------------------------------------

def _serialize(metric):
    # KafkaMessageAdapter.do_send_metric / KafkaMessageAdapterPreHourly.do_send_metric
    return json.dumps(metric, separators=(',', ':'))


class CaptureMetricsAdapter(object):
    """[messaging] adapter: what KafkaInsert sends to the `metrics` topic."""

    def do_send_metric(self, metric):
        TOPICS[METRICS_TOPIC].append(_serialize(metric))


class CapturePreHourlyAdapter(object):
    """[messaging] adapter_pre_hourly: what KafkaInsertPreHourly sends to metrics_pre_hourly."""

    def do_send_metric(self, metric):
        TOPICS[PRE_HOURLY_TOPIC].append(_serialize(metric))


class MemoryOffsetSpecs(object):
    """[repositories] offsets: MySQLOffsetSpecs's behaviour (revision 1 = newest, at most
    offsets_max_revisions kept per app/topic/partition, batch_time as '%Y-%m-%d %H:%M:%S')
    on a list in memory. simport instantiates it afresh each time: the state is class-level."""

    rows = []  # dicts: id, app_name, topic, partition, from_offset, until_offset, batch_time,
    #           last_updated, revision
    next_id = 1
    max_revisions = 10

    class Spec(object):
        def __init__(self, row):
            self.row = dict(row)

        def get_app_name(self):
            return self.row["app_name"]

        def get_topic(self):
            return self.row["topic"]

        def get_partition(self):
            return self.row["partition"]

        def get_from_offset(self):
            return self.row["from_offset"]

        def get_until_offset(self):
            return self.row["until_offset"]

        def get_batch_time(self):
            return self.row["batch_time"]

        def get_last_updated(self):
            return self.row["last_updated"]

        def get_revision(self):
            return self.row["revision"]

    def _by_revision(self, app_name, revision):
        return {"%s_%s_%s" % (r["app_name"], r["topic"], r["partition"]): self.Spec(r)
                for r in MemoryOffsetSpecs.rows
                if r["app_name"] == app_name and r["revision"] == revision}

    def get_kafka_offsets(self, app_name):
        return self._by_revision(app_name, 1)

    def get_kafka_offsets_by_revision(self, app_name, revision):
        return self._by_revision(app_name, revision)

    def get_most_recent_batch_time_from_offsets(self, app_name, topic):
        for r in MemoryOffsetSpecs.rows:
            if (r["app_name"] == app_name and r["topic"] == topic and r["partition"] == 0
                    and r["revision"] == 1):
                return datetime.datetime.strptime(r["batch_time"], '%Y-%m-%d %H:%M:%S')
        return None

    def delete_all_kafka_offsets(self, app_name):
        MemoryOffsetSpecs.rows = [r for r in MemoryOffsetSpecs.rows if r["app_name"] != app_name]

    def add_all_offsets(self, app_name, offsets, batch_time_info):
        batch_time = batch_time_info.strftime('%Y-%m-%d %H:%M:%S')
        for o in offsets:
            MemoryOffsetSpecs.rows.append({
                "id": MemoryOffsetSpecs.next_id, "app_name": app_name, "topic": o.topic,
                "partition": o.partition, "from_offset": o.fromOffset,
                "until_offset": o.untilOffset, "batch_time": batch_time,
                "last_updated": batch_time, "revision": -1})
            MemoryOffsetSpecs.next_id += 1
        # _manage_offset_revisions
        groups = {}
        for r in MemoryOffsetSpecs.rows:
            groups.setdefault((r["app_name"], r["topic"], r["partition"]), []).append(r)
        for rows in groups.values():
            for revision, r in enumerate(sorted(rows, key=lambda r: -r["id"]), start=1):
                r["revision"] = revision
        MemoryOffsetSpecs.rows = [r for r in MemoryOffsetSpecs.rows
                                  if r["revision"] <= MemoryOffsetSpecs.max_revisions]

    def add(self, app_name, topic, partition, from_offset, until_offset, batch_time_info):
        self.add_all_offsets(app_name, [OffsetRange(topic, partition, from_offset, until_offset)],
                             batch_time_info)


class SpecsTables(object):
    """Stands for DataFrameReader in mysql_data_driven_specs_repo: .jdbc(url, table) answers
    the table's rows (one spec JSON per row, in column transform_spec / pre_transform_spec)
    from the spec files."""

    files = {}  # table name -> path

    def __init__(self, sql_context):
        self.sql_context = sql_context

    def jdbc(self, url, table):
        column = {"transform_specs": "transform_spec",
                  "pre_transform_specs": "pre_transform_spec"}[table]
        rows = []
        with open(SpecsTables.files[table], encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    rows.append({column: line.rstrip("\n")})
        return types.SimpleNamespace(collect=lambda: rows)


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------

class SimulatedClock(object):
    now = None  # epoch seconds

    @staticmethod
    def time():
        return float(SimulatedClock.now)


def clock_modules():
    """Module look-alikes for `time` and `datetime` whose now is the simulated time."""
    fake_time = types.ModuleType("time")
    fake_time.__dict__.update({k: getattr(time, k) for k in dir(time) if not k.startswith("__")})
    fake_time.time = SimulatedClock.time

    class SimulatedDatetime(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime.fromtimestamp(SimulatedClock.now, tz)

    fake_datetime = types.ModuleType("datetime")
    fake_datetime.__dict__.update({k: getattr(datetime, k) for k in dir(datetime)
                                   if not k.startswith("__")})
    fake_datetime.datetime = SimulatedDatetime
    return fake_time, fake_datetime


def metric_timestamp_ms(line):
    """The metric.timestamp (ms) of an input line, or None (the original drops such lines
    later or keeps them with a null timestamp: either way they don't set the hours)."""
    try:
        ts = float(json.loads(line)["metric"]["timestamp"])
    except Exception:
        return None
    return ts if ts == ts and abs(ts) != float("inf") else None


def simulated_times(lines):
    """(previous pre-hourly batch time, this batch time) in epoch seconds; see the docstring."""
    stamps = [t for t in (metric_timestamp_ms(line) for line in lines) if t is not None]
    if not stamps:
        raise SystemExit("transform_oracle: no input line has a numeric metric.timestamp")
    first_hour = int(min(stamps) / 1000 // 3600 * 3600)
    last_hour = int(max(stamps) / 1000 // 3600 * 3600)
    return first_hour + SLACK_SECONDS, last_hour + 3600 + SLACK_SECONDS


def write_config(workdir):
    conf = os.path.join(workdir, "monasca-transform.conf")
    with open(conf, "w") as f:
        f.write("""[repositories]
offsets = __main__:MemoryOffsetSpecs
data_driven_specs = monasca_transform.data_driven_specs.mysql_data_driven_specs_repo:MySQLDataDrivenSpecsRepo
offsets_max_revisions = 10

[database]
server_type = mysql:thin
host = localhost
database_name = monasca_transform
username = m-transform
password = password

[messaging]
adapter = __main__:CaptureMetricsAdapter
topic = metrics
brokers = 127.0.0.1:9
adapter_pre_hourly = __main__:CapturePreHourlyAdapter
topic_pre_hourly = metrics_pre_hourly

[stage_processors]
pre_hourly_processor_enabled = True

[pre_hourly_processor]
late_metric_slack_time = %d
enable_instance_usage_df_cache = True
instance_usage_df_cache_storage_level = MEMORY_AND_DISK
enable_batch_time_filtering = True
data_provider = monasca_transform.processor.pre_hourly_processor:PreHourlyProcessorDataProvider
effective_batch_revision = 2

[service]
enable_debug_log_entries = False
service_log_path = %s
service_log_filename = monasca-transform.log
stream_interval = 600
enable_record_store_df_cache = True
record_store_df_cache_storage_level = MEMORY_AND_DISK
""" % (SLACK_SECONDS, workdir))
    return conf


def sort_key_metric(line):
    m = json.loads(line)["metric"]
    return (m["name"], json.dumps(m["dimensions"], sort_keys=True), line)


def sort_key_pre_hourly(line):
    return ((json.loads(line).get("processing_meta") or {}).get("metric_id") or "", line)


def write_lines(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")


def run(args, workdir):
    with open(args.input, encoding="utf-8") as f:
        lines = [line.rstrip("\r\n") for line in f]
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise SystemExit("transform_oracle: %s has no metric" % args.input)
    previous_run, now = simulated_times(lines)
    SimulatedClock.now = now

    conf = write_config(workdir)
    os.environ["TZ"] = "UTC"
    time.tzset()
    os.environ[CONF_ENV] = conf
    os.environ[DAEMON_ENV] = "1"
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [HERE] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

    # SQLContext.getOrCreate (used throughout the original) warns it is deprecated.
    warnings.filterwarnings("ignore", category=FutureWarning)
    install_kafka_stub()
    install_config(conf)
    SpecsTables.files = {"pre_transform_specs": args.pre_transform_specs,
                         "transform_specs": args.transform_specs}

    from pyspark import SparkConf
    from pyspark import SparkContext
    from monasca_transform.component import insert as insert_component
    from monasca_transform.data_driven_specs import mysql_data_driven_specs_repo
    from monasca_transform.driver.mon_metrics_kafka import MonMetricsKafkaProcessor
    from monasca_transform.processor import pre_hourly_processor
    from monasca_transform.processor.pre_hourly_processor import PreHourlyProcessor

    # The clock (see the module docstring): the pre-hourly batch-time filter keeps
    # lastrecord >= FIRST_HOUR (previous run, seeded below) and firstrecord < LAST_HOUR + 1 h
    # (datetime.now() truncated), so every hour of the input is processed; the published
    # metrics' timestamp/creation_time (time.time() in component.insert) is that same "now".
    fake_time, fake_datetime = clock_modules()
    insert_component.time = fake_time
    pre_hourly_processor.datetime = fake_datetime
    mysql_data_driven_specs_repo.DataFrameReader = SpecsTables

    def offsets_from_kafka(brokers, topic, offset_time):
        # offset_time -1 = latest, -2 = earliest; one partition (0)
        latest = len(TOPICS[topic])
        offset = latest if offset_time == -1 else 0
        return {"%s_0" % topic: types.SimpleNamespace(topic=topic, partition=0,
                                                      offsets=[offset])}
    PreHourlyProcessor._get_offsets_from_kafka = staticmethod(offsets_from_kafka)

    swallowed = []
    original_log_debug = MonMetricsKafkaProcessor.log_debug

    def log_debug(message):
        if str(message).startswith("Exception raised in metric processing"):
            swallowed.append(str(message))
        original_log_debug(message)
    MonMetricsKafkaProcessor.log_debug = staticmethod(log_debug)

    # The previous pre-hourly run (processed the hour before the input's first hour).
    MemoryOffsetSpecs().add_all_offsets(
        PRE_HOURLY_APP, [OffsetRange(PRE_HOURLY_TOPIC, 0, 0, 0)],
        datetime.datetime.fromtimestamp(previous_run))

    spark_conf = (SparkConf()
                  .setMaster("local[2]")
                  .setAppName(STAGE1_APP)
                  .set("spark.sql.session.timeZone", "UTC")
                  .set("spark.ui.enabled", "false")
                  .set("spark.ui.showConsoleProgress", "false")
                  .set("spark.sql.shuffle.partitions", "2")
                  .set("spark.default.parallelism", "2")
                  .set("spark.python.daemon.module", MODULE)
                  .set("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
                  .set("spark.executor.extraJavaOptions", "-Duser.timezone=UTC"))
    STATE["spark_started"] = True
    sc = SparkContext(conf=spark_conf)
    try:
        # Spark's own ERROR lines (a task failure) would repeat the traces the Python
        # exceptions carry anyway.
        sc.setLogLevel("FATAL")
        batch_time = datetime.datetime.fromtimestamp(now)
        # One partition, like a one-partition `metrics` topic: Spark then sums (avg, sum
        # rollups) in input order, so the float results don't depend on a partitioning.
        rdd = sc.parallelize([(None, line) for line in lines], 1)
        rdd.offsetRanges = lambda: [OffsetRange(METRICS_TOPIC, 0, 0, len(lines))]
        rdd_transform_context = MonMetricsKafkaProcessor.store_offset_ranges(batch_time, rdd)
        MonMetricsKafkaProcessor.rdd_to_recordstore(rdd_transform_context)
    finally:
        sc.stop()

    for message in swallowed:
        # The message carries the whole Java/Python trace: keep its first line and the
        # Python exception.
        text = message.splitlines()
        cause = [t for t in text if re.match(r"^[A-Za-z_.]*(Error|Exception): ", t)]
        print("transform_oracle: warning: stage 1 (the original) skipped a metric_id: "
              + " ".join(text[:1] + cause[-1:]), file=sys.stderr)
    if not TOPICS[PRE_HOURLY_TOPIC]:
        raise SystemExit("transform_oracle: stage 1 published no instance usage (no input "
                         "metric matches a pre_transform_spec with its required fields?)")
    if KAFKA_READS["createRDD"] != 1:
        raise SystemExit("transform_oracle: the pre-hourly processor did not run")
    if not TOPICS[METRICS_TOPIC]:
        raise SystemExit("transform_oracle: the pre-hourly processor published no metric")

    write_lines(args.output, sorted(TOPICS[METRICS_TOPIC], key=sort_key_metric))
    if args.pre_hourly_output:
        write_lines(args.pre_hourly_output,
                    sorted(TOPICS[PRE_HOURLY_TOPIC], key=sort_key_pre_hourly))
    return len(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--pre-transform-specs", required=True)
    parser.add_argument("--transform-specs", required=True)
    parser.add_argument("--pre-hourly-output")
    args = parser.parse_args()
    for path in (args.input, args.pre_transform_specs, args.transform_specs):
        if not os.path.isfile(path):
            raise SystemExit("transform_oracle: no such file: %s" % path)

    workdir = tempfile.mkdtemp(prefix="transform-oracle-")
    started = time.time()
    stdout = sys.stdout
    ok = False
    try:
        # The original print()s a lot (log_debug): keep it out of our stdout.
        with open(os.path.join(workdir, "driver.out"), "w") as out:
            sys.stdout = out
            try:
                count = run(args, workdir)
            finally:
                sys.stdout = stdout
        ok = True
    except SystemExit as e:
        print(e.code if isinstance(e.code, str) else "transform_oracle: failed", file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    if not ok:
        if STATE["spark_started"]:
            print("transform_oracle: failed; the original's output and log are in %s" % workdir,
                  file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        sys.exit(1)
    shutil.rmtree(workdir, ignore_errors=True)
    print("transform_oracle: %d input lines -> %d instance usage records -> %d metrics "
          "(%.1f s)" % (count, len(TOPICS[PRE_HOURLY_TOPIC]), len(TOPICS[METRICS_TOPIC]),
                        time.time() - started), file=sys.stderr)


if __name__ == "__main__":
    if os.environ.get(DAEMON_ENV) == "1" and len(sys.argv) == 1:
        run_daemon()
    else:
        main()
