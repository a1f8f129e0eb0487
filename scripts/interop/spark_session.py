"""A local SparkSession with Delta Lake, for deltadrop's interop checks and benchmarks.

Needs the environment from scripts/lib/spark-env.sh (DELTADROP_SPARK_JARS): the Delta jars come from
Maven Central through that script, because Spark's own `--packages` resolver cannot reach it here.

    from spark_session import spark_session
    spark = spark_session("my-check", **{"spark.sql.session.timeZone": "UTC"})
"""
import os

from pyspark.sql import SparkSession

# Delta's defaults suit a cluster: 50 partitions for every snapshot rebuild and 200 shuffle partitions
# turn each small commit into seconds of task scheduling on a 2-core machine.
DEFAULTS = {
    "spark.master": "local[2]",
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.sql.shuffle.partitions": "2",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
    # Spark's default log4j profile prints INFO banners at start; this one keeps WARN and above.
    "spark.driver.extraJavaOptions": "-Dlog4j2.configurationFile=file:"
    + os.path.join(os.path.dirname(os.path.abspath(__file__)), "log4j2-quiet.properties"),
}


def spark_session(app_name, **conf):
    """Builds (or returns the running) local[2] session. Keyword arguments are Spark settings and
    override the defaults; dotted names need `**{"spark.x": "y"}`."""
    jars = os.environ.get("DELTADROP_SPARK_JARS", "")
    if not jars:
        raise RuntimeError("DELTADROP_SPARK_JARS is empty: source scripts/lib/spark-env.sh first")
    settings = dict(DEFAULTS, **{"spark.jars": jars})
    settings.update({k: str(v) for k, v in conf.items()})
    builder = SparkSession.builder.appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    # log4j's level can only be set once the JVM is up; WARN still shows what goes wrong.
    spark.sparkContext.setLogLevel(os.environ.get("DELTADROP_SPARK_LOG_LEVEL", "WARN"))
    return spark
