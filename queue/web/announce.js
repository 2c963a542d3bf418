/* Hall announcements in the browser: calls are played one after another, each to its end.
 *
 * A plain script (no build step, no modules); it defines window.KiosqAnnounce:
 *   const queue = new KiosqAnnounce.AnnounceQueue(
 *     KiosqAnnounce.audioPlayer((call) => `/api/announcements?number=${call.number}&window=${call.window}`),
 *     { onchange: ({ current, pending }) => showNowAnnouncing(current) });
 *   queue.push({ number: "A001", window: 3 });   // on ticket.called and on ticket.recalled
 * Browsers refuse sound until the page has had a tap: if `await KiosqAnnounce.canAutoplay()`
 * is false, show an "enable sound" button whose click handler calls KiosqAnnounce.unlockAudio().
 */
(function (global) {
  "use strict";

  // Longest wait for one announcement that never ends nor fails (a stalled download):
  // a call with English lasts about 10 s. Known-longer files get their length plus GRACE_MS.
  const SAFETY_TIMEOUT_MS = 20000;
  const GRACE_MS = 5000;
  const AUTOPLAY_PROBE_MS = 2000;

  // 0.02 s of silence: 8 kHz, 8-bit mono WAV (the header, then 160 samples of 0x80).
  const SILENCE = "data:audio/wav;base64,UklGRsQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YaAAAACA" +
    "gICA".repeat(53);

  /* Plays items strictly one at a time, in the order pushed; a recall is just another push.
   * play(item) returns a Promise that settles when the item has finished playing (or failed);
   * a rejection or a throw only moves the queue on. */
  class AnnounceQueue {
    constructor(play, { onchange = null, onplayed = null } = {}) {
      if (typeof play !== "function") {
        throw new TypeError("AnnounceQueue needs play(item): a function returning a Promise");
      }
      this.play = play;
      this.onchange = onchange; // ({current, pending}) whenever either changes, e.g. for "now announcing"
      this.onplayed = onplayed; // (item, result) after each item: what play resolved with, or its error
      this.current = null; // the item playing now, or null
      this._pending = [];
      this._busy = false;
      this._idle = [];
    }

    get pending() {
      return this._pending.slice();
    }

    push(item) {
      this._pending.push(item);
      this._notify(this.onchange, { current: this.current, pending: this.pending });
      this._drain();
    }

    /* A Promise that resolves once nothing is playing or waiting. */
    whenIdle() {
      return this._busy ? new Promise((resolve) => this._idle.push(resolve)) : Promise.resolve();
    }

    async _drain() {
      if (this._busy) return; // the running loop picks the new item up
      this._busy = true;
      while (this._pending.length) {
        const item = this._pending.shift();
        this.current = item;
        this._notify(this.onchange, { current: item, pending: this.pending });
        let result;
        try {
          result = await this.play(item);
        } catch (error) {
          result = error;
        }
        this._notify(this.onplayed, item, result);
      }
      this.current = null;
      this._busy = false;
      this._notify(this.onchange, { current: null, pending: [] });
      this._idle.splice(0).forEach((resolve) => resolve());
    }

    _notify(callback, ...args) {
      if (!callback) return;
      try {
        callback(...args);
      } catch (error) {
        console.error("kiosq announce: a callback failed", error); // the queue keeps going
      }
    }
  }

  /* A play(item) for AnnounceQueue: plays new Audio(urlFor(item)) and resolves, never rejects,
   * with "ended", "error", "blocked" (no tap yet: autoplay refused) or "timeout". */
  function audioPlayer(urlFor, { timeoutMs = SAFETY_TIMEOUT_MS, makeAudio = (url) => new Audio(url) } = {}) {
    return (item) => new Promise((resolve) => {
      const audio = makeAudio(urlFor(item));
      let timer = setTimeout(() => finish("timeout"), timeoutMs);
      const onEnded = () => finish("ended");
      const onError = () => finish("error");
      const onMetadata = () => {
        // Never cut off a long file: wait for its whole length.
        const needed = audio.duration * 1000 + GRACE_MS;
        if (Number.isFinite(needed) && needed > timeoutMs) {
          clearTimeout(timer);
          timer = setTimeout(() => finish("timeout"), needed);
        }
      };
      function finish(result) {
        clearTimeout(timer);
        audio.removeEventListener("ended", onEnded);
        audio.removeEventListener("error", onError);
        audio.removeEventListener("loadedmetadata", onMetadata);
        // Stopped and emptied: a stalled file can never start late over the next call,
        // and a display running for days does not keep every decoder it ever opened.
        audio.pause();
        audio.removeAttribute("src");
        audio.load();
        resolve(result);
      }
      audio.addEventListener("ended", onEnded);
      audio.addEventListener("error", onError);
      audio.addEventListener("loadedmetadata", onMetadata);
      Promise.resolve()
        .then(() => audio.play())
        .catch((error) => finish(error && error.name === "NotAllowedError" ? "blocked" : "error"));
    });
  }

  /* Call from the click handler of the one-time "enable sound" button: playing a sound
   * within the tap lets the page play sound from then on. Resolves true if it played. */
  function unlockAudio() {
    try {
      return new Audio(SILENCE).play().then(() => true, () => false);
    } catch (error) {
      return Promise.resolve(false);
    }
  }

  /* Whether the page may already play sound without a tap (a kiosk browser started with
   * --autoplay-policy=no-user-gesture-required, or one tapped before). */
  async function canAutoplay() {
    if (global.navigator && typeof global.navigator.getAutoplayPolicy === "function") {
      return global.navigator.getAutoplayPolicy("mediaelement") === "allowed";
    }
    const audio = new Audio(SILENCE);
    let timer;
    const undecided = new Promise((resolve) => { timer = setTimeout(() => resolve(false), AUTOPLAY_PROBE_MS); });
    try {
      // Refused: rejects at once with NotAllowedError. Any other failure says nothing
      // about the policy, but a tap costs little, so it counts as "not allowed" too.
      return await Promise.race([audio.play().then(() => true, () => false), undecided]);
    } finally {
      clearTimeout(timer);
      audio.pause();
    }
  }

  global.KiosqAnnounce = { AnnounceQueue, audioPlayer, unlockAudio, canAutoplay, SILENCE };
})(typeof window !== "undefined" ? window : globalThis);
