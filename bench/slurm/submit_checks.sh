# shellcheck shell=bash
# bench/slurm/submit_checks.sh: run_slurm.sh's checks against the cluster (sourced, not run).
#
# Why it exists: sbatch accepts requests that can never run. On a node that declares 2 CPUs a
# 6-task job is queued and stays PENDING with Reason=PartitionConfig for ever, and
# `sbatch --wait` waits with it (measured, notes/platform.md); a job cancelled while pending
# even makes `sbatch --wait` exit 0. So the submitter
#   - checks every request before submitting anything (slurm_check_request: the partition's
#     state, time limit, node count and CPUs, then `sbatch --test-only` with the same options)
#     and refuses with one line per impossible request: what it needs, what the partition has,
#     and the changes that would fit;
#   - waits on submitted jobs itself (slurm_wait_jobs): polls squeue, cancels and reports a job
#     pending for a reason that cannot clear, takes exit codes from Slurm's job records, and
#     gives up after a bound.
# Every Slurm command runs under `timeout`: an unreachable slurmctld cannot stall the caller.
# Callers define note() (a message on stderr); these functions never exit.

slurm_cmd_timeout=${MAYFLY_SLURM_CMD_TIMEOUT:-20} # seconds for one sinfo/squeue/sbatch call

# True when a Slurm controller answers. Sets slurm_unreachable to sinfo's first error line.
slurm_reachable() {
  local err
  slurm_unreachable=""
  command -v sinfo >/dev/null || { slurm_unreachable="sinfo not found (no Slurm client here)"; return 1; }
  if ! err=$(timeout "$slurm_cmd_timeout" sinfo -h -o %P 2>&1 >/dev/null); then
    slurm_unreachable=$(printf '%s\n' "$err" | grep -v '^$' | tail -n 1)
    [ -n "$slurm_unreachable" ] || slurm_unreachable="no answer within ${slurm_cmd_timeout} s"
    [[ "$slurm_unreachable" == sinfo:* ]] || slurm_unreachable="sinfo: $slurm_unreachable"
    return 1
  fi
}

# Minutes of a Slurm time value ([days-]hours:minutes:seconds, minutes, UNLIMITED -> empty).
slurm_minutes() {
  local t=$1 days=0 h=0 m=0 s=0
  case "$t" in UNLIMITED | INFINITE | NONE | "") echo ""; return ;; esac
  if [[ "$t" == *-* ]]; then days=${t%%-*} t=${t#*-}; fi
  IFS=: read -r -a parts <<<"$t"
  case ${#parts[@]} in
    1) m=${parts[0]} ;;
    2) if [ "$days" -gt 0 ]; then h=${parts[0]} m=${parts[1]}; else m=${parts[0]} s=${parts[1]}; fi ;;
    *) h=${parts[0]} m=${parts[1]} s=${parts[2]} ;;
  esac
  echo $((10#$days * 1440 + 10#$h * 60 + 10#$m + (10#$s > 0 ? 1 : 0)))
}

# The partitions a submission goes to: SBATCH_PARTITION (a comma-separated list) or the
# cluster's default partition (sinfo marks it with '*').
slurm_partitions() {
  if [ -n "${SBATCH_PARTITION:-}" ]; then
    tr ',' '\n' <<<"$SBATCH_PARTITION"
  else
    timeout "$slurm_cmd_timeout" sinfo -h -o %P 2>/dev/null | sed -n 's/\*$//p' | head -n 1
  fi
}

# True for node states (sinfo %T) that cannot take a job now: down, drained or draining,
# failing, in maintenance, not responding (suffix *), ...  Powered-off idle nodes (idle~)
# are available: Slurm powers them up.
slurm_node_unusable() {
  case "$1" in
    *'*'*) return 0 ;;
    down* | drain* | fail* | maint* | unknown* | future* | inval* | reboot* | planned* | \
      perfctrs* | power_down* | powered_down* | powering_down*) return 0 ;;
  esac
  return 1
}

# Reads partition $1 into slurm_part_* variables: state, max_minutes (empty: unlimited),
# max_nodes, cpus (per node, largest first, capped by MaxCPUsPerNode), usable (CPUs of nodes
# that can take a job now), nodes. Returns 1 when the partition does not exist.
slurm_read_partition() {
  local part=$1 line word cap=""
  line=$(timeout "$slurm_cmd_timeout" scontrol show partition -o "$part" 2>/dev/null) || return 1
  [[ "$line" == PartitionName=* ]] || return 1
  slurm_part_state="" slurm_part_max_minutes="" slurm_part_max_nodes="" slurm_part_usable=0
  slurm_part_cpus=()
  for word in $line; do
    case "$word" in
      State=*) slurm_part_state=${word#State=} ;;
      MaxTime=*) slurm_part_max_minutes=$(slurm_minutes "${word#MaxTime=}") ;;
      MaxNodes=*) slurm_part_max_nodes=${word#MaxNodes=} ;;
      MaxCPUsPerNode=*) cap=${word#MaxCPUsPerNode=} ;;
    esac
  done
  [[ "$slurm_part_max_nodes" =~ ^[0-9]+$ ]] || slurm_part_max_nodes=""
  [[ "$cap" =~ ^[0-9]+$ ]] || cap=""
  local name cpus state
  while read -r name cpus state; do
    [[ "$cpus" =~ ^[0-9]+$ ]] || continue
    [ -n "$cap" ] && [ "$cpus" -gt "$cap" ] && cpus=$cap
    slurm_part_cpus+=("$cpus")
    slurm_node_unusable "$state" || slurm_part_usable=$((slurm_part_usable + cpus))
  done < <(timeout "$slurm_cmd_timeout" sinfo -h -N -p "$part" -o '%N %c %T' 2>/dev/null | sort -u)
  slurm_part_nodes=${#slurm_part_cpus[@]}
  mapfile -t slurm_part_cpus < <(printf '%s\n' "${slurm_part_cpus[@]}" | sort -rn)
}

# CPUs the partition can give one job on at most $1 nodes (empty: its node limit).
slurm_capacity() {
  local n=${1:-${slurm_part_max_nodes:-$slurm_part_nodes}} sum=0 i
  [ -n "$slurm_part_max_nodes" ] && [ "$n" -gt "$slurm_part_max_nodes" ] && n=$slurm_part_max_nodes
  for ((i = 0; i < n && i < slurm_part_nodes; i++)); do sum=$((sum + slurm_part_cpus[i])); done
  echo $sum
}

# The smallest node count whose CPUs hold $1 tasks (empty when all nodes together do not).
slurm_nodes_for() {
  local tasks=$1 sum=0 i
  for ((i = 0; i < slurm_part_nodes; i++)); do
    sum=$((sum + slurm_part_cpus[i]))
    [ "$sum" -ge "$tasks" ] && { echo $((i + 1)); return; }
  done
}

# How many nodes of the partition just read have at least $1 CPUs.
slurm_nodes_with() {
  local n=0 c
  for c in "${slurm_part_cpus[@]}"; do [ "$c" -ge "$1" ] && n=$((n + 1)); done
  echo $n
}
# True when the partition can give one job $1 nodes of $2 CPUs each.
slurm_nodes_hold() {
  [ -n "$slurm_part_max_nodes" ] && [ "$1" -gt "$slurm_part_max_nodes" ] && return 1
  [ "$(slurm_nodes_with "$2")" -ge "$1" ]
}

# Checks one request against the cluster before anything is submitted.
#   slurm_check_request LABEL TASKS MINUTES PEERS [SBATCH OPTIONS...]
# TASKS = PEERS for baseline or --oversubscribe, PEERS x (1 + workers) otherwise, or the
# total of a layout on fixed nodes (slurm_check_nodes="NODES TASKS_PER_NODE"); the options
# are the submission's own resource options (--ntasks, --time, --array, --nodes ...), passed
# to `sbatch --test-only` with run_slurm.sh as the script. On success sets slurm_check_outcome
# (one line: where it would start); on failure prints one `run_slurm: error:` line and
# returns 1.
slurm_check_request() {
  local label=$1 tasks=$2 minutes=$3 peers=$4
  shift 4
  local needs="$tasks tasks" layout_nodes="" layout_per=""
  [ -n "${slurm_check_nodes:-}" ] && read -r layout_nodes layout_per <<<"$slurm_check_nodes"
  if [ -n "$layout_nodes" ]; then
    needs="$layout_nodes nodes of $layout_per tasks ($peers peers and their workers)"
  elif [ "$tasks" -gt "$peers" ]; then
    needs="$tasks tasks ($peers peers x (1 + $((tasks / peers - 1)) workers))"
  else
    needs="$tasks tasks ($peers peers)"
  fi
  needs+=" for $minutes min"
  local part parts=() verdicts=() fits="" reason="" has
  mapfile -t parts < <(slurm_partitions)
  [ ${#parts[@]} -gt 0 ] && [ -n "${parts[0]}" ] || {
    echo "run_slurm: error: $label: needs $needs; the cluster has no default partition (set SBATCH_PARTITION)" >&2
    return 1
  }
  for part in "${parts[@]}"; do
    if ! slurm_read_partition "$part"; then
      verdicts+=("partition $part does not exist"); continue
    fi
    local capacity
    capacity=$(slurm_capacity)
    has="partition $part has $slurm_part_nodes node(s), $capacity CPUs for one job"
    [ -n "$slurm_part_max_nodes" ] && has+=" (MaxNodes=$slurm_part_max_nodes)"
    if [ "$slurm_part_state" != UP ]; then
      reason="$has but is $slurm_part_state"
    elif [ -n "$slurm_part_max_minutes" ] && [ "$minutes" -gt "$slurm_part_max_minutes" ]; then
      reason="partition $part allows at most $slurm_part_max_minutes min (MaxTime)"
    elif [ "$tasks" -gt "$capacity" ]; then
      reason="$has"
    elif [ -n "$layout_nodes" ] && ! slurm_nodes_hold "$layout_nodes" "$layout_per"; then
      reason="$has; $(slurm_nodes_with "$layout_per") of its nodes have $layout_per CPUs"
    else
      fits=$part
      break
    fi
    verdicts+=("$reason")
  done
  if [ -z "$fits" ]; then
    echo "run_slurm: error: $label: needs $needs; ${verdicts[*]}; $(slurm_fitting_options "$tasks" "$peers" "$minutes")" >&2
    return 1
  fi
  # sbatch's own verdict with the same options. It also fails while the nodes are down or
  # drained: then the request fits the partition and the job is submitted (slurm_wait_jobs
  # cancels it when no node comes back).
  local out
  out=$(SBATCH_PARTITION=$fits timeout "$slurm_cmd_timeout" sbatch --test-only "$@" 2>&1)
  local rc=$?
  out=$(printf '%s\n' "$out" | grep -v '^$' | tail -n 1)
  out=${out#sbatch: }
  if [ $rc -eq 0 ]; then
    slurm_check_outcome="$label: fits partition $fits ($out)"
    return 0
  fi
  if [ "$slurm_part_usable" -lt "$tasks" ]; then
    slurm_check_outcome="$label: fits partition $fits, but only $slurm_part_usable of its CPUs are up now (sbatch --test-only: $out); the job waits for nodes to return"
    return 0
  fi
  echo "run_slurm: error: $label: needs $needs; sbatch --test-only refuses it: $out" >&2
  return 1
}

# The changes that would fit the partition just read (for the refusal line).
slurm_fitting_options() { # tasks peers minutes
  local tasks=$1 peers=$2 minutes=$3 capacity options=()
  capacity=$(slurm_capacity)
  if [ -n "$slurm_part_max_minutes" ] && [ "$minutes" -gt "$slurm_part_max_minutes" ]; then
    options+=("a shorter run (--time / time= at most $slurm_part_max_minutes)")
  fi
  if [ "$tasks" -gt "$capacity" ]; then
    if [ "$tasks" -gt "$peers" ] && [ "$peers" -le "$capacity" ]; then
      options+=("--oversubscribe ($peers tasks: workers share the peers' cores)")
      local w=$((capacity / peers - 1))
      [ "$w" -ge 1 ] && options+=("workers=$w or fewer ($((peers * (1 + w))) tasks)")
    fi
    [ "$tasks" -gt "$peers" ] || [ "$peers" -le "$capacity" ] ||
      options+=("peers=$capacity or fewer")
    local n
    n=$(slurm_nodes_for "$tasks")
    if [ -n "$n" ] && [ -n "$slurm_part_max_nodes" ] && [ "$n" -gt "$slurm_part_max_nodes" ]; then
      options+=("a partition allowing $n nodes")
    elif [ -z "$n" ]; then
      local per=${slurm_part_cpus[0]:-1}
      options+=("more nodes (a partition with $(((tasks + per - 1) / per)) nodes of $per CPUs)")
    fi
  fi
  if [ -n "${slurm_check_nodes:-}" ]; then
    local nodes per
    read -r nodes per <<<"$slurm_check_nodes"
    slurm_nodes_hold "$nodes" "$per" ||
      options+=("fewer tasks per node (fewer peers or workers; more nodes= for remote and any)")
  fi
  [ ${#options[@]} -gt 0 ] || options=("another partition (SBATCH_PARTITION)")
  local IFS=,
  echo "fits with: ${options[*]}" | sed 's/,/, or /g'
}

# Pending reasons that can never clear by themselves: the request violates a partition,
# association or QOS limit per job, a constraint no node has, a dependency that failed.
slurm_reason_hopeless() {
  case "$1" in
    PartitionConfig | BadConstraints | DependencyNeverSatisfied | InvalidAccount | InvalidQOS | \
      PartitionTimeLimit | AccountNotAllowed | QOSNotAllowed | JobLaunchFailure) return 0 ;;
    QOSMax*PerUser* | QOSMax*PerAccount* | AssocMax*PerUser*) return 1 ;;
    QOSMax*Limit | AssocMax*Limit | MaxCpuPerJob* | QOSMin*) return 0 ;;
  esac
  return 1
}

# Pending reasons that clear only when nodes or the partition come back.
slurm_reason_unavailable() {
  case "$1" in
    ReqNodeNotAvail* | "Nodes required for job are DOWN"* | NodeDown* | PartitionDown* | \
      PartitionInactive* | PartitionNodeLimit* | FrontEndDown*) return 0 ;;
  esac
  return 1
}

# Waits, bounded, for submitted jobs (array or not) to end.
#   slurm_wait_jobs MAX_SECONDS NODE_GRACE_SECONDS LABEL=JOBID...
# Polls squeue every few seconds. A job pending for a hopeless reason is reported (job id,
# reason) and cancelled at once; one pending because its nodes or partition are unavailable is
# cancelled when the partition has had too few usable CPUs for NODE_GRACE seconds in a row.
# After MAX_SECONDS it stops waiting and names the jobs still queued (left in the queue).
# Sets slurm_wait_worst: the worst exit code (a job that did not complete counts at least 1,
# 124 when the bound was reached); prints one line per job that did not succeed.
slurm_wait_jobs() {
  local max=$1 grace=$2
  shift 2
  local -A label_of=() final=() code_of=() unavailable_since=() cancelled=()
  local pair id
  for pair in "$@"; do label_of[${pair##*=}]=${pair%=*}; done
  local start=$SECONDS interval=2 user
  user=$(id -un)
  slurm_wait_worst=0
  while :; do
    local out pending=0 seen=" "
    if out=$(timeout "$slurm_cmd_timeout" squeue -h -t all -r -u "$user" \
        -O 'ArrayJobID:30|,ArrayTaskID:30|,State:30|,exit_code:30|,Partition:60|,NumCPUs:30|,Reason:300' 2>/dev/null); then
      local job task state raw part cpus reason
      while IFS='|' read -r job task state raw part cpus reason; do
        job=${job// /} task=${task// /} state=${state// /} raw=${raw// /} part=${part// /}
        cpus=${cpus// /} reason=$(sed 's/[[:space:]]*$//' <<<"$reason")
        [ -n "${label_of[$job]:-}" ] || continue
        seen+="$job "
        id=$job
        [ "$task" = N/A ] || id=${job}_$task
        case "$state" in
          PENDING | RUNNING | CONFIGURING | COMPLETING | REQUEUED | REQUEUE_HOLD | REQUEUE_FED | \
            RESIZING | SUSPENDED | STOPPED | SIGNALING | STAGE_OUT | RESV_DEL_HOLD | SPECIAL_EXIT)
            pending=1 ;;
          *) final[$id]=$state
             [[ "$raw" =~ ^[0-9]+$ ]] || raw=256
             if [ $((raw & 127)) -ne 0 ]; then code_of[$id]=$((128 + (raw & 127)))
             else code_of[$id]=$((raw >> 8)); fi
             continue ;;
        esac
        [ "$state" = PENDING ] || { unset "unavailable_since[$job]"; continue; }
        [ -n "${cancelled[$job]:-}" ] && continue
        if slurm_reason_hopeless "$reason"; then
          slurm_cancel_hopeless "$job" "$reason" "it cannot clear"
          cancelled[$job]=1
        elif slurm_reason_unavailable "$reason" && slurm_read_partition "$part" &&
            { [ "$slurm_part_usable" -lt "${cpus:-1}" ] || [ "$slurm_part_state" != UP ]; }; then
          : "${unavailable_since[$job]:=$SECONDS}"
          if [ $((SECONDS - unavailable_since[$job])) -ge "$grace" ]; then
            slurm_cancel_hopeless "$job" "$reason" "partition $part has had $slurm_part_usable usable CPUs (state $slurm_part_state) for $grace s, the job needs ${cpus:-1}"
            cancelled[$job]=1
          fi
        else
          unset "unavailable_since[$job]"
        fi
      done <<<"$out"
    else
      pending=1 # squeue failed (controller busy or restarting): try again within the bound
    fi
    for id in "${!label_of[@]}"; do # a job gone from squeue before it was seen ending
      [[ "$seen" == *" $id "* ]] || [ -n "$(slurm_final_of "$id")" ] || { final[$id]=GONE; code_of[$id]=1; }
    done
    [ "$pending" -eq 0 ] && break
    if [ $((SECONDS - start)) -ge "$max" ]; then
      local left=()
      for pair in "$@"; do
        id=${pair##*=}
        [[ "$seen" == *" $id "* ]] && [ -z "${cancelled[$id]:-}" ] && left+=("$id")
      done
      note "waited ${max} s (--max-wait): jobs ${left[*]} are still queued or running, left" \
        "in the queue (squeue -j $(IFS=,; echo "${left[*]}"); scancel to drop them)"
      slurm_wait_worst=124
      break
    fi
    sleep "$interval"
  done
  local worst=$slurm_wait_worst
  for id in $(printf '%s\n' "${!final[@]}" | sort -V); do
    local code=${code_of[$id]} state=${final[$id]}
    [ "$state" != COMPLETED ] && [ "$code" -eq 0 ] && code=1
    [ "$code" -gt "$worst" ] && worst=$code
    [ "$code" -ne 0 ] && note "job $id (${label_of[${id%%_*}]}) ended $state, exit code $code"
  done
  slurm_wait_worst=$worst
}

# Array job ids whose final state was recorded in the caller's final[] (helper of the above).
slurm_final_of() {
  local k
  for k in "${!final[@]}"; do [[ "$k" == "$1" || "$k" == "$1"_* ]] && { echo "$k"; return; }; done
}

slurm_cancel_hopeless() { # job reason why
  echo "run_slurm: error: job $1 (${label_of[$1]}) is pending with reason '$2', and $3: cancelled" >&2
  timeout "$slurm_cmd_timeout" scancel "$1" 2>/dev/null ||
    echo "run_slurm: error: job $1: scancel failed; cancel it yourself" >&2
}
