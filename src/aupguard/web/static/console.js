// aupguard console: progressive enhancement only; every page works without it.
// Forms with data-confirm ask before posting (sending a notice, escalating).
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
