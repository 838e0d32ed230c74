"""data: the data sets people make: examples drawn on the canvas or read from image files (a folder or a zip
in torchvision's ImageFolder layout, or a few files for one class), every hostile input refused in a sentence
and every unreadable image listed, and a data set written back out as such a zip. The store keeps them
(nnapp.store.datasets); nnapp.engine.datasets and engine.data read their versions.
Imports system, engine, store and predict."""
