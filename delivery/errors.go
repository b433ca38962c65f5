package delivery

import "errors"

// ErrEarlierFailed marks an item error that is only a consequence of an
// earlier item's failure in the same Send: the item was not tried, or was
// sent again to keep its object's events in order. A target wraps it
// ("webhook: not sent: %w"). The engine retries such an item like any
// other, but when it quarantines it, the reason it records is the earlier
// item's error: the real cause.
var ErrEarlierFailed = errors.New("delivery: an earlier item failed")
