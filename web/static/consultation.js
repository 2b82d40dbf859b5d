// A letter's link carries the reply code in its fragment (#code=...), which a browser never
// sends to a server. Put it in the form, drop it from the address bar and history, and post it.
const match = /(?:^#|&)code=([^&]+)/.exec(window.location.hash);
if (match) {
  const form = document.getElementById("code-form");
  const input = document.getElementById("f-code");
  if (form && input) {
    input.value = decodeURIComponent(match[1]);
    window.history.replaceState(null, "", window.location.pathname);
    form.submit();
  }
}
