# shellcheck shell=bash
# Spark + Delta environment for deltadrop's interop checks and benchmarks. Source it:
#
#   source scripts/lib/spark-env.sh || exit 1
#
# On return (status 0) these are exported:
#   DELTADROP_CACHE            cache root (default ~/.cache/deltadrop)
#   DELTADROP_VENV             the venv shared with scripts/interop-python.sh
#   DELTADROP_PY               that venv's python (pyspark, delta-spark, deltalake, pyarrow, polars)
#   DELTADROP_SPARK_JARS_DIR   folder holding the Delta jars and their non-Spark dependencies
#   DELTADROP_SPARK_JARS       the same jars, comma-separated, for `spark.jars`
#   PYSPARK_PYTHON, PYSPARK_DRIVER_PYTHON   the venv python, so executors match the driver
#   PYTHONPATH                 scripts/interop prepended, so `from spark_session import spark_session` works
#
# The first run installs pip packages into the venv and copies jars with Maven (minutes, quiet unless it
# fails); later runs only compare stamp files (milliseconds). Set DELTADROP_SPARK_ENV_NO_AUTO=1 before
# sourcing to only define the functions. Nothing here touches the caller's shell options.

# pip's newest delta-spark can be ahead of the newest jar on Maven Central: pin a pair both registries
# serve, and keep the jar's Spark major.minor equal to pyspark's.
DELTADROP_PY_REQS="deltalake==1.6.6 pyarrow==26.0.1 polars==2.1.0 pyspark==4.2.0 delta-spark==4.4.0"
DELTADROP_DELTA_JAR="io.delta:delta-spark_4.2_2.13:4.4.0"
# The abfs:// filesystem for reading tables on Azure (Azurite in the check): the Hadoop version pyspark
# ships (hadoop-client-api 3.5.0); wasb:// is gone from it.
DELTADROP_AZURE_JAR="org.apache.hadoop:hadoop-azure:3.5.0"
# Artifacts whose classes pyspark ships under another artifact name: RoaringBitmap 1.x contains the old
# `shims` classes, jcl-over-slf4j provides commons-logging's API.
DELTADROP_JARS_PROVIDED_ELSEWHERE="shims commons-logging"

# Runs a command with its output sent to a log, shown only if it fails: success must stay quiet, but a
# failed download must say why.
_deltadrop_quietly() {
  local log rc
  log=$(mktemp) || return 1
  "$@" >"$log" 2>&1
  rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "spark-env: '$*' failed (exit $rc):" >&2
    tail -n 40 "$log" >&2
  fi
  rm -f "$log"
  return "$rc"
}

_deltadrop_venv() {
  local venv=$1 stamp="$1/.deltadrop-spark-reqs"
  # The stamp alone could outlive a hand-pruned venv; pyspark's jars folder is the part that matters.
  if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$DELTADROP_PY_REQS" ]] \
      && compgen -G "$venv/lib/python3*/site-packages/pyspark/jars" >/dev/null; then
    return 0
  fi
  if [[ ! -x "$venv/bin/python" ]]; then
    _deltadrop_quietly python3 -m venv "$venv" || return 1
  fi
  # shellcheck disable=SC2086  # the requirement list is meant to split into words
  _deltadrop_quietly "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $DELTADROP_PY_REQS \
    || return 1
  printf '%s' "$DELTADROP_PY_REQS" >"$stamp"
}

# Copies the Delta jar and its runtime dependencies into $2, leaving out every artifact pyspark already ships
# in $3 (scala-library, hadoop-client, jackson, parquet, log4j…): two versions of one library on the
# classpath is how NoSuchMethodError starts.
_deltadrop_jars() {
  local coord=$1 dest=$2 spark_jars=$3 stamp="$2/.deltadrop-jars" want
  want="$coord minus $DELTADROP_JARS_PROVIDED_ELSEWHERE"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  local g a v work jar artifact kept=0
  IFS=: read -r g a v <<<"$coord"
  work=$(mktemp -d) || return 1
  cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>deltadrop</groupId><artifactId>spark-jars</artifactId><version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>$g</groupId><artifactId>$a</artifactId><version>$v</version></dependency>
  </dependencies>
  <build><plugins><plugin>
    <groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId>
    <version>3.8.1</version>
  </plugin></plugins></build>
</project>
EOF
  # The repository layout keeps artifactId as a folder name, so matching against pyspark's jars needs no
  # guessing where a file name's version starts.
  if ! _deltadrop_quietly mvn -q -B -f "$work/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -Dmdep.useRepositoryLayout=true -DoutputDirectory="$work/repo"; then
    rm -rf "$work"
    return 1
  fi
  mkdir -p "$work/jars"
  while IFS= read -r jar; do
    artifact=$(basename "$(dirname "$(dirname "$jar")")")
    if compgen -G "$spark_jars/$artifact-[0-9]*.jar" >/dev/null \
        || [[ " $DELTADROP_JARS_PROVIDED_ELSEWHERE " == *" $artifact "* ]]; then
      continue
    fi
    cp "$jar" "$work/jars/" || { rm -rf "$work"; return 1; }
    kept=$((kept + 1))
  done < <(find "$work/repo" -name '*.jar')
  if [[ $kept -eq 0 ]]; then
    echo "spark-env: Maven copied no jar for $coord" >&2
    rm -rf "$work"
    return 1
  fi
  printf '%s' "$want" >"$work/jars/.deltadrop-jars"
  # Swap the folder in whole, so a reader never sees half a set and a failed run leaves the old one.
  rm -rf "$dest.old"
  [[ -d "$dest" ]] && mv "$dest" "$dest.old"
  mv "$work/jars" "$dest" || { rm -rf "$work"; return 1; }
  rm -rf "$dest.old" "$work"
}

# Prints the jars folder of the pyspark that python $1 imports.
_deltadrop_pyspark_jars() {
  "$1" -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))'
}

# Runs a command holding the cache's lock ($1 is the cache): two scripts sourcing this at once (a check
# and a benchmark) must not pip-install into one venv, or swap one jar folder, together.
_deltadrop_locked() {
  local cache=$1 lock_fd rc=0
  shift
  exec {lock_fd}>"$cache/.spark-env.lock" || return 1
  flock "$lock_fd" || { exec {lock_fd}>&-; return 1; }
  "$@" || rc=1
  exec {lock_fd}>&-
  return "$rc"
}

# The venv, then the Delta jars beside what its pyspark ships.
_deltadrop_install() {
  local venv=$1 jars_dir=$2 spark_jars
  _deltadrop_venv "$venv" || return 1
  spark_jars=$(_deltadrop_pyspark_jars "$venv/bin/python") && [[ -d "$spark_jars" ]] \
    || { echo "spark-env: pyspark's jars folder not found" >&2; return 1; }
  _deltadrop_jars "$DELTADROP_DELTA_JAR" "$jars_dir" "$spark_jars"
}

# Prints the jars of folder $1, comma-separated (for spark.jars).
_deltadrop_jar_list() {
  local jar list=""
  for jar in "$1"/*.jar; do
    list+=${list:+,}$jar
  done
  printf '%s' "$list"
}

deltadrop_spark_env() {
  local cache=${DELTADROP_CACHE:-$HOME/.cache/deltadrop}
  local venv="$cache/venv" jars_dir="$cache/spark-jars" here list
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || return 1
  mkdir -p "$cache" || return 1
  command -v java >/dev/null || { echo "spark-env: Spark needs java (17+) on PATH" >&2; return 1; }
  command -v mvn >/dev/null || { echo "spark-env: the Delta jars are fetched with mvn, which is not on PATH" >&2; return 1; }
  command -v flock >/dev/null || { echo "spark-env: flock (util-linux) is not on PATH" >&2; return 1; }
  _deltadrop_locked "$cache" _deltadrop_install "$venv" "$jars_dir" || return 1
  list=$(_deltadrop_jar_list "$jars_dir")
  export DELTADROP_CACHE=$cache DELTADROP_VENV=$venv DELTADROP_PY="$venv/bin/python"
  export DELTADROP_SPARK_JARS_DIR=$jars_dir DELTADROP_SPARK_JARS=$list
  export PYSPARK_PYTHON="$venv/bin/python" PYSPARK_DRIVER_PYTHON="$venv/bin/python"
  # Spark otherwise resolves the host name and warns when it maps to a loopback address.
  export SPARK_LOCAL_IP=${SPARK_LOCAL_IP:-127.0.0.1}
  case ":${PYTHONPATH:-}:" in
    *":$here/interop:"*) ;;
    *) export PYTHONPATH="$here/interop${PYTHONPATH:+:$PYTHONPATH}" ;;
  esac
}

# After deltadrop_spark_env: adds hadoop-azure and its dependencies (cached like the Delta jars) to
# DELTADROP_SPARK_JARS, for a session that reads abfs:// tables.
deltadrop_spark_azure_jars() {
  local dir="$DELTADROP_CACHE/spark-azure-jars" spark_jars
  spark_jars=$(_deltadrop_pyspark_jars "$DELTADROP_PY") || return 1
  _deltadrop_locked "$DELTADROP_CACHE" _deltadrop_jars "$DELTADROP_AZURE_JAR" "$dir" "$spark_jars" || return 1
  DELTADROP_SPARK_JARS+=",$(_deltadrop_jar_list "$dir")"
  export DELTADROP_SPARK_JARS
}

if [[ -z "${DELTADROP_SPARK_ENV_NO_AUTO:-}" ]]; then
  deltadrop_spark_env || return 1 2>/dev/null || exit 1
fi
