// Retentio back office: the little interactivity the pages need, no framework, no requests
// to anywhere but this server. A form with data-confirm asks before it is sent.
"use strict";
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form && form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
