// The account page's copy buttons: the clipboard where the browser allows it (https),
// else the text is selected for Ctrl+C / a long press.
document.querySelectorAll("[data-copy]").forEach(function (button) {
  button.addEventListener("click", function () {
    var source = document.getElementById(button.dataset.copy);
    var label = button.textContent;
    function done(text) {
      button.textContent = text;
      setTimeout(function () { button.textContent = label; }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.textContent).then(function () { done("Copied"); });
      return;
    }
    var range = document.createRange();  // plain http: select it for Ctrl+C / long press
    range.selectNodeContents(source);
    window.getSelection().removeAllRanges();
    window.getSelection().addRange(range);
    done("Selected: copy it");
  });
});
