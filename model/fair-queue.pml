/*
 * The line of a fair lock: waiters that must wait create a ticket (a Lease of their own), renew it,
 * and only the first in line tries to take the lock. Checked exhaustively with SPIN by
 * test/protocol-model.test.ts; see docs/safety.md ("What the protocol model covers").
 *
 * Model step                          TypeScript that does it
 * ----------------------------------  ------------------------------------------------------------------
 * waiter: read the line               WaitLine.read / WaitLine.update (sdk/queue.ts): a consistent list
 *                                       (or a watch snapshot, late or never); ages kept per ticket while
 *                                       its resourceVersion is unchanged (observe, sdk/expiry.ts)
 * waiter: join (create a ticket)      WaitLine.join -> store.create (ticketDraft, sdk/ticket.ts); the
 *                                       place is the resourceVersion of the create
 * waiter: renew (CAS, keeps place)    WaitLine.renew -> store.update (renewedTicket: the position kept in
 *                                       an annotation); due every half of ticketDuration
 * waiter: place sure until            WaitLine.placeSureUntil: sentAt(last confirmed ticket write) +
 *   send + D - M                        ticketDuration - safetyMargin on the waiter's own clock
 * waiter: rejoin at the back          tendLine (sdk/locks.ts): mustRejoin -> leave (delete under
 *                                       {uid, resourceVersion}) -> join
 * waiter: first in line?              mayTake -> WaitLine.ahead: no ticket with an earlier position that
 *                                       still counts (seen unchanged < D + grace on its own clock)
 * waiter: take the lock               acquireStep (sdk/acquire-step.ts): the compare-and-swap on the
 *                                       lock's lease, as in model/lease-lock.pml
 * waiter: take at once (no line)      acquireStep with mayTake true: lock free and nobody in line
 * holder: release                     HeldLock.#release (CAS to free)
 *
 * The lock's own lease is abstracted to a compare-and-swap register (holder, resourceVersion): how it
 * expires, is renewed, freed by the controller and deleted is model/lease-lock.pml's subject. Here a
 * holder keeps it until it releases it, and the lock starts held by someone outside the line. Also left
 * out: the controller deleting tickets nobody renews (under preconditions, by the same rule as the
 * waiters: it only removes tickets whose place is no longer sure), a ticket create whose answer was
 * lost (looked up by name, WaitLine.join), and ticket writes that apply after their answer was lost
 * (they only keep a ticket counted longer). A waiter's ticket slot is reused when it joins again: a
 * ticket it could not delete (changed by a renewal whose answer was lost) vanishes then, as if the
 * controller had deleted it; such a ticket has no waiter whose place could be passed.
 *
 * Time, as in lease-lock.pml: every waiter has its own monotonic clock, a tick advances one clock by one
 * unit, no two clocks differ by more than SKEW, and ages saturate where larger values decide nothing.
 * A ticket write is sent, applied by the store at some later step, and answered at some later step; an
 * answer that takes TMO ticks or more is lost (the request timed out), whether the write applied or not.
 *
 * Two rules of the line carry its order, beside those the SDK states (see docs/guarantees.md, "Waiting
 * in line"):
 *   R1  a ticket ahead is passed as dead only on a read of the line that shows it unchanged for
 *       D + grace: an older observation may miss a renewal that applied since;
 *   R2  a renewal answered after the place's deadline (send of the last confirmed write + D - M) does not
 *       restore the place: the waiter joins again, since others may have passed it meanwhile (its write
 *       can have applied after their read).
 * MUTATION_STALE_JUDGE and MUTATION_ANSWER_LATE take each away. (A read made for R1 comes after the
 * waiter's own create, so it shows every ticket created before its own that still exists: a view of the
 * line older than the own ticket, which may miss some, is one of the stale observations R1 excludes.)
 * WaitLine follows R2 (`renew` keeps no place for an answer after placeSureUntil) and R1: mayTake in
 * sdk/locks.ts reads the line afresh before it passes someone as gone, and whenever its view is older
 * than its own ticket's create (WaitLine.seesOwnJoin). MUTATION_FRESH_ONLY_PASSING drops that second
 * case: its counterexample is a waiter whose view predates an earlier waiter's create (a watch that
 * has not delivered it yet) going first.
 *
 * Properties (assertions, checked where they could first become false):
 *   Q1  mutual exclusion: when a waiter takes the lock nobody else holds it;
 *   Q2  order: when a waiter takes the lock, no waiter whose place is still sure is ahead of it (its
 *       ticket created earlier; for a waiter that took at once, earlier than the read of the line it
 *       found empty); and a waiter that was passed over while in line never again has a sure place on
 *       that ticket (it must join again at the back).
 *
 * Mutations (-D switches), each expected to produce a counterexample:
 *   MUTATION_NOT_HEAD         a waiter takes the lock whoever is ahead of it
 *   MUTATION_RENEW_LATE       a waiter past its place's deadline renews in place instead of rejoining
 *   MUTATION_WALL_CLOCK       tickets judged dead from their renewTime and the reader's wall clock
 *   MUTATION_NO_CAS           the first in line writes the lock without compare-and-swap
 *   MUTATION_STALE_JUDGE      without R1: dead judged on an observation no read confirmed
 *   MUTATION_ANSWER_LATE      without R2: a renewal answered after the deadline restores the place
 *   MUTATION_FRESH_ONLY_PASSING  R1 only when passing a ticket as dead: a view that shows nobody ahead
 *                             decides however old it is (it may predate an earlier waiter's create)
 */

#ifndef NW
#define NW 2            /* waiters */
#endif
#ifndef NJOIN
#define NJOIN 2         /* tickets per waiter (the first and those of rejoining) */
#endif
#ifndef NREN
#define NREN 1          /* ticket renewals per waiter */
#endif
#ifndef DIRECT
#define DIRECT 1        /* waiters may take a free lock at once when they see nobody in line */
#endif
#ifndef DUR
#define DUR 3           /* ticketDuration */
#endif
#ifndef MARGIN
#define MARGIN 1        /* safetyMargin of the ticket */
#endif
#ifndef GRACE
#define GRACE 1         /* expiryGrace */
#endif
#ifndef SKEW
#define SKEW 1          /* largest difference between two clocks */
#endif
#ifndef TMO
#define TMO 3           /* request timeout */
#endif
#ifndef WALLSKEW
#define WALLSKEW 2      /* waiter 0's wall clock runs this far behind (MUTATION_WALL_CLOCK only) */
#endif

#define SURE (DUR - MARGIN)
#define DEAD_AFTER (DUR + GRACE)
#define X (NW + 1)      /* the holder the lock starts with */

/* waiter states */
#define IDLE  0         /* not in line: joins, or takes a free lock at once */
#define CLEAR 1         /* not in line, and a read of the line found nobody in it: may take at once */
#define WAIT  2         /* in line with a ticket */
#define HEAD  3         /* in line, and a read of the line found it first: tries the lock */
#define HOLD  4
#define DONE  5
#define GONE  6         /* died or paused for good: its ticket stays */

/* ticket request */
#define R_NONE  0
#define R_SENT  1
#define R_OK    2       /* applied, answer on its way */
#define R_FAIL  3       /* the ticket was gone or changed */

/*
 * The store's one revision counter orders everything; only its order among ticket creates and reads
 * of the line decides anything, so the model keeps that order (ncreated) and, per object, a version
 * that changes with each write (what compare-and-swap and "unchanged" compare).
 */
byte ncreated;          /* tickets created so far: a ticket's position is its create's number */

/* ---- the lock: who holds it (0: free); a compare-and-swap reads and writes it in one step ---- */
byte l_holder = X;

/* ---- tickets, one slot per waiter ---- */
bool t_ex[NW];
byte t_pos[NW];
byte t_ver[NW];

/* ---- waiters ---- */
byte st[NW];
byte njoin[NW];
byte nren[NW];
byte k_ver[NW];         /* version of its ticket's last confirmed write */
byte place[NW];         /* ticks of its clock until its place's deadline */
byte rq[NW];            /* its ticket renewal in flight */
byte rq_age[NW];
bool rq_late[NW];       /* sent after the place's deadline (MUTATION_RENEW_LATE only) */
bool passed[NW];        /* Q2 (ghost): someone behind took the lock while it was in line */
#ifdef MUTATION_NO_CAS
bool lv_free[NW];       /* its last read of the lock */
#endif
byte clear_at[NW];      /* CLEAR: ncreated + 1 at the read that found the line empty */
/* its view of the line, per ticket slot: position (0: none), version, age on its own clock */
byte v_pos[NW * NW];
byte v_ver[NW * NW];
byte v_age[NW * NW];
#define V(i, j) ((i) * NW + (j))

#ifdef MUTATION_STALE_JUDGE
bool v_seen[NW];        /* it has read the line */
#endif
byte lead[NW];          /* clock of waiter p - the slowest clock */
int sc;                 /* scratch, always 0 between steps */
byte q;
bool allup;

/* ---- helpers ---- */
inline first_seen(i, j) {
#ifdef MUTATION_WALL_CLOCK
  /* age from renewTime: waiter j's wall clock at its write, read on waiter i's wall clock */
  sc = (i == 0 -> 0 : WALLSKEW) + lead[i] - (j == 0 -> 0 : WALLSKEW) - lead[j];
  if
  :: sc < 0 -> v_age[V(i, j)] = 0
  :: sc > DEAD_AFTER -> v_age[V(i, j)] = DEAD_AFTER
  :: else -> v_age[V(i, j)] = sc
  fi;
  sc = 0
#else
  v_age[V(i, j)] = 0
#endif
}

/* a consistent list of the line */
inline read_line(i) {
  for (q : 0 .. NW - 1) {
    if
    :: q == i -> skip
    :: q != i && t_ex[q] && v_pos[V(i, q)] == t_pos[q] && v_ver[V(i, q)] == t_ver[q] -> skip    /* unchanged */
    :: q != i && t_ex[q] && !(v_pos[V(i, q)] == t_pos[q] && v_ver[V(i, q)] == t_ver[q]) ->
       v_pos[V(i, q)] = t_pos[q]; v_ver[V(i, q)] = t_ver[q]; first_seen(i, q)
    :: else -> v_pos[V(i, q)] = 0; v_ver[V(i, q)] = 0; v_age[V(i, q)] = 0
    fi
  }
  q = 0
}

/* a waiter that holds the lock, is done or gone decides nothing more: its knowledge and its clock go */
inline retire(i) {
  for (q : 0 .. NW - 1) { v_pos[V(i, q)] = 0; v_ver[V(i, q)] = 0; v_age[V(i, q)] = 0 }
  q = 0;
  clear_at[i] = 0; lead[i] = 0;
#ifdef MUTATION_NO_CAS
  lv_free[i] = false
#endif
}

/* a ticket in i's view that still counts and stands before position p */
#define AHEAD(i, j, p) ((j) != (i) && v_pos[V(i, j)] != 0 && v_pos[V(i, j)] < (p) && v_age[V(i, j)] < DEAD_AFTER)

inline leave(i) {
  if
  :: t_ex[i] && t_ver[i] == k_ver[i] -> t_ex[i] = false; t_pos[i] = 0; t_ver[i] = 0
  :: else -> skip    /* changed since: nobody renews it, and others stop counting it */
  fi;
  k_ver[i] = 0; place[i] = 0; passed[i] = false; rq[i] = R_NONE; rq_age[i] = 0; rq_late[i] = false
}

/* a waiter gone: its ticket stays as it is, its own bookkeeping goes */
inline leave_state(i) {
  k_ver[i] = 0; place[i] = 0; passed[i] = false; rq[i] = R_NONE; rq_age[i] = 0; rq_late[i] = false
}

/* Q1 and Q2 when i takes the lock from place p */
inline took(i, p) {
  assert(l_holder != X);
  for (q : 0 .. NW - 1) {
    assert(q == i || st[q] != HOLD);
    if
    :: q != i && (st[q] == WAIT || st[q] == HEAD) && t_pos[q] < p ->
       assert(place[q] == 0);    /* Q2: passed only once its place is no longer sure */
       passed[q] = true
    :: else -> skip
    fi
  }
  q = 0;
  l_holder = i + 1; st[i] = HOLD; retire(i)
}

/*
 * Taking the lock: a compare-and-swap on the version read. With it, a read and the write that follows
 * are one step here: a stale read only makes the write fail. Without it (MUTATION_NO_CAS) the read and
 * the write are apart and the write lands whatever happened in between.
 */
#ifdef MUTATION_NO_CAS
#define LOOKS_FREE(i) lv_free[i]
#else
#define LOOKS_FREE(i) (l_holder == 0)
#endif

#ifdef MUTATION_RENEW_LATE
#define MAY_RENEW(i) true
#else
#define MAY_RENEW(i) (place[i] > 0)
#endif

#define IN_LINE(i) (st[i] == WAIT || st[i] == HEAD)
#define OUT_OF_LINE(i) (st[i] == IDLE || st[i] == CLEAR)
#define ACTIVE(i) (OUT_OF_LINE(i) || IN_LINE(i))

/* first in line by i's view: nobody ahead that still counts */
#define FIRST(i) (!AHEAD(i, 0, t_pos[i]) && !AHEAD(i, 1, t_pos[i]) && (NW < 3 || !AHEAD(i, 2, t_pos[i])))
/* nobody in line by i's view */
/* no ticket at all before its own in i's view, whatever its age */
#define NONE_AHEAD(i) (!SEEN_AHEAD(i, 0) && !SEEN_AHEAD(i, 1) && (NW < 3 || !SEEN_AHEAD(i, 2)))
#define SEEN_AHEAD(i, j) ((j) != (i) && v_pos[V(i, j)] != 0 && v_pos[V(i, j)] < t_pos[i])
#define EMPTY(i) (!AHEAD(i, 0, 255) && !AHEAD(i, 1, 255) && (NW < 3 || !AHEAD(i, 2, 255)))

proctype waiter(byte i) {
end:
  do
  /* reads, at any time: a poll, a list or a watch event that comes late */
#ifdef MUTATION_NO_CAS
  :: atomic { ACTIVE(i) -> lv_free[i] = (l_holder == 0) }
#endif
#ifdef MUTATION_STALE_JUDGE
  :: atomic { ACTIVE(i) -> read_line(i); v_seen[i] = true }
  :: atomic { st[i] == WAIT && place[i] > 0 && FIRST(i) -> st[i] = HEAD }
  :: atomic { st[i] == IDLE && v_seen[i] && EMPTY(i) -> st[i] = CLEAR; clear_at[i] = ncreated + 1 }
#else
  :: atomic { ACTIVE(i) -> read_line(i);
              if    /* R1: judged on this read */
              :: st[i] == WAIT && place[i] > 0 && FIRST(i) -> st[i] = HEAD
              :: st[i] == IDLE && EMPTY(i) -> st[i] = CLEAR; clear_at[i] = ncreated + 1
              :: else -> skip
              fi }
#endif
#ifdef MUTATION_FRESH_ONLY_PASSING
  /* R1 kept only for passing: with nobody ahead in its last view, however old, it goes first */
  :: atomic { st[i] == WAIT && place[i] > 0 && NONE_AHEAD(i) -> st[i] = HEAD }
#endif

#if DIRECT
  /* take a free lock at once: nobody in line by its read of the line */
  :: atomic { st[i] == CLEAR && LOOKS_FREE(i) ->
              took(i, clear_at[i]) }
#endif

  /* join at the back */
  :: atomic { OUT_OF_LINE(i) && njoin[i] < NJOIN ->
              njoin[i]++; ncreated++; t_ex[i] = true; t_pos[i] = ncreated; t_ver[i] = 0; k_ver[i] = 0;
              place[i] = SURE; st[i] = WAIT; clear_at[i] = 0 }
  :: atomic { OUT_OF_LINE(i) && njoin[i] == NJOIN -> st[i] = DONE; retire(i) }

  /* renew the ticket: send, the store applies it, the answer comes or is lost */
  :: atomic { IN_LINE(i) && rq[i] == R_NONE && nren[i] < NREN && MAY_RENEW(i) ->
              nren[i]++; rq[i] = R_SENT; rq_age[i] = 0; rq_late[i] = (place[i] == 0) }
  :: atomic { rq[i] == R_SENT ->
              if
              :: t_ex[i] && t_ver[i] == k_ver[i] -> t_ver[i]++; rq[i] = R_OK
              :: else -> rq[i] = R_FAIL
              fi }
  :: atomic { rq[i] == R_OK && rq_age[i] < TMO ->
              k_ver[i] = t_ver[i];    /* nobody else writes a ticket */
              if
#ifndef MUTATION_ANSWER_LATE
              :: place[i] == 0 && !rq_late[i] -> skip    /* R2: answered too late, it joins again */
#endif
              :: else ->
                 place[i] = SURE - rq_age[i];
                 assert(place[i] == 0 || !passed[i])    /* Q2: a passed waiter has no sure place */
              fi;
              rq[i] = R_NONE; rq_age[i] = 0; rq_late[i] = false }
  :: atomic { rq[i] == R_FAIL -> st[i] = IDLE; leave(i) }    /* gone or changed: join again */
  /* no answer in time: the write may have applied; the place stays as last confirmed */
  :: atomic { rq[i] == R_SENT || rq[i] == R_OK -> rq[i] = R_NONE; rq_age[i] = 0; rq_late[i] = false }

  /* its place is no longer sure: leave, join again at the back */
  :: atomic { IN_LINE(i) && place[i] == 0 && rq[i] == R_NONE -> st[i] = IDLE; leave(i) }

  /* first in line: take the lock when it looks free (compare-and-swap on what it read) */
#ifdef MUTATION_NOT_HEAD
  :: atomic { IN_LINE(i) && rq[i] == R_NONE && place[i] > 0 && LOOKS_FREE(i) ->
#else
  :: atomic { st[i] == HEAD && rq[i] == R_NONE && place[i] > 0 && LOOKS_FREE(i) ->
#endif
              took(i, t_pos[i]); leave(i) }

  :: atomic { st[i] == HOLD -> l_holder = 0; st[i] = DONE }
  :: atomic { IN_LINE(i) -> st[i] = GONE; retire(i); leave_state(i) }
  od
}

/* the holder the lock starts with releases it */
active proctype first_holder() {
end:
  atomic { l_holder == X -> l_holder = 0 }
}

/* ---- time ---- */
inline age(p) {
  for (q : 0 .. NW - 1) {
    if
    :: v_pos[V(p, q)] != 0 && v_age[V(p, q)] < DEAD_AFTER -> v_age[V(p, q)]++
    :: else -> skip
    fi
  }
  if
  :: place[p] > 0 -> place[p]--
  :: else -> skip
  fi;
  if
  :: (rq[p] == R_SENT || rq[p] == R_OK) && rq_age[p] < TMO -> rq_age[p]++
  :: else -> skip
  fi
}

/* keeps the slowest clock of the waiters still deciding at 0 */
inline normalize() {
  allup = true;
  for (q : 0 .. NW - 1) {
    if
    :: lead[q] == 0 && ACTIVE(q) -> allup = false
    :: else -> skip
    fi
  }
  if
  :: allup ->
     for (q : 0 .. NW - 1) {
       if
       :: lead[q] > 0 -> lead[q]--
       :: else -> skip
       fi
     }
  :: else -> skip
  fi;
  q = 0; allup = false
}

active proctype clock() {
end:
  do
  :: d_step { lead[0] < SKEW && ACTIVE(0) -> lead[0]++; age(0); normalize() }
  :: d_step { lead[1] < SKEW && ACTIVE(1) -> lead[1]++; age(1); normalize() }
#if NW > 2
  :: d_step { lead[2] < SKEW && ACTIVE(2) -> lead[2]++; age(2); normalize() }
#endif
  od
}

init {
  atomic {
    run waiter(0);
    run waiter(1);
#if NW > 2
    run waiter(2);
#endif
  }
}
